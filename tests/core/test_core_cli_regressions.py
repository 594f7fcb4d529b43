"""Regression tests for CLI input-handling bugs found while writing the core suite."""

from __future__ import annotations

import io
from pathlib import Path

from guardrail.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_non_utf8_account_file_exit_2(tmp_path: Path) -> None:
    # read_text raised UnicodeDecodeError (a ValueError, not an OSError): a traceback
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    code, out, err = run("evaluate", "--format", "json", str(path))
    assert code == 2
    assert out == ""
    assert f"{path}: " in err
    assert "UTF-8" in err


def test_deeply_nested_json_exit_2(tmp_path: Path) -> None:
    # json.loads raised RecursionError: a traceback
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    code, out, err = run("evaluate", "--format", "json", str(path))
    assert code == 2
    assert out == ""
    assert f"{path}: not JSON" in err
