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


SCOPE = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-sandbox"


@pytest.mark.parametrize("value", ["2027-02-30", "2027-13-01"])
def test_impossible_calendar_date_is_a_policy_error(tmp_path: Path, value: str) -> None:
    # PyYAML's timestamp constructor raised a bare ValueError: a traceback, not exit 2
    path, error = _load(
        tmp_path, f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: ['*']\n    expires: {value}\n"
    )
    assert str(error).startswith(f"{path}: ")
    assert value in str(error)
    assert "line 5" in str(error)


def test_non_utf8_policy_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\n")
    with pytest.raises(PolicyError, match=r"latin1\.yaml: .*not UTF-8"):
        load_policy(path)


def test_valid_dates_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: ['*']\n    expires: 2028-02-29\n"
    )
    assert str(load_policy(path).exemptions[0].expires) == "2028-02-29"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        # the second `network` silently replaced the first: min_prefix_length 24 was lost
        (
            "version: 1\nnetwork:\n  min_prefix_length: 24\nnetwork:\n  require_default_deny: true\n",
            "network",
        ),
        (
            "version: 1\nnetwork:\n  require_default_deny: true\n  require_default_deny: false\n",
            "require_default_deny",
        ),
        (
            "version: 1\nremediate:\n  bypass-not-allowed: true\n  'bypass-not-allowed': false\n",
            "bypass-not-allowed",
        ),
    ],
)
def test_duplicate_keys_are_an_error(tmp_path: Path, text: str, key: str) -> None:
    path, error = _load(tmp_path, text)
    assert str(error).startswith(f"{path}: ")
    assert f"duplicate key {key!r}" in str(error)


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "version: 1\nbase: &b {require_default_deny: true, min_prefix_length: 16}\n", encoding="utf-8"
    )
    with pytest.raises(PolicyError, match="base: unknown key"):
        load_policy(path)
    path.write_text(
        "version: 1\nnetwork:\n  <<: {min_prefix_length: 16, require_default_deny: false}\n"
        "  min_prefix_length: 24\n",
        encoding="utf-8",
    )
    network = load_policy(path).network
    assert (network.min_prefix_length, network.require_default_deny) == (24, False)
