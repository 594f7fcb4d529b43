"""Regression tests for policy-loader bugs found while writing the core suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.policy import PolicyError, load_policy


def _load(tmp_path: Path, text: str) -> tuple[str, PolicyError]:
    path = tmp_path / "org-policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return str(path), caught.value


@pytest.mark.parametrize("version", ["true", "1.0", "'1'"])
def test_version_must_be_the_integer_1(tmp_path: Path, version: str) -> None:
    path, error = _load(tmp_path, f"version: {version}\n")
    assert str(error).startswith(f"{path}: version: ")
