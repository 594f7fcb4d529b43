"""Regression tests for policy-loader bugs found while writing the core suite."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from guardrail.cli import main
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


# -- issue #22 item 7: a hostile policy ends in a policy error naming the key, in bounded time ------
def _bomb(levels: int, *, reference_from_version: bool) -> str:
    """An alias bomb in a list field: each level a list of 9 aliases of the one before."""
    lines = ["network:", "  allowed_fqdns:", "    - &a0 [" + ", ".join(["x"] * 9) + "]"]
    lines += [f"    - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    lines.append(f"version: *a{levels - 1}" if reference_from_version else "version: 1")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias-bomb-in-a-list": (_bomb(6, reference_from_version=False), "network.allowed_fqdns"),
    "alias-bomb-echoed-by-version": (_bomb(5, reference_from_version=True), "network"),
    "deep-nesting": ("version: 1\nnetwork:\n  allowed_subnets: " + "[" * 3000 + "]" * 3000 + "\n", "network"),
    "deep-block-nesting": (
        "version: 1\nnetwork:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(200)) + "\n",
        "network.k0",
    ),
    "5000-digit-integer": (
        "version: 1\nnetwork:\n  min_prefix_length: " + "9" * 5000 + "\n",
        "network.min_prefix_length",
    ),
    "long-float": (
        "version: 1\nnetwork:\n  min_prefix_length: 1." + "5" * 400 + "\n",
        "network.min_prefix_length",
    ),
    "recursive-alias": (
        "version: 1\nnetwork:\n  allowed_subnets: &loop [*loop]\n",
        "network.allowed_subnets",
    ),
    "a-megabyte-value": (
        "version: 1\nnetwork:\n  allowed_fqdns: ['" + "a" * 900_000 + "\\n.example']\n",
        "network.allowed_fqdns",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_policy_is_a_policy_error_naming_the_key_never_an_echo(tmp_path: Path, name: str) -> None:
    text, key = HOSTILE[name]
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main(["policy", "validate", str(path)], out=out, err=err) == 2  # a policy error, not a crash
    message = err.getvalue()
    assert f"{path}: {key}" in message
    assert len(message) < 4000  # the input is never echoed whole
    assert "Traceback" not in message


def test_a_policy_over_a_million_characters_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path, error = _load(tmp_path, "version: 1\n# " + "x" * 1_000_000 + "\n")
    assert str(error).startswith(f"{path}: the policy is ") and len(str(error)) < 300


def test_anchors_and_merge_keys_within_the_limits_still_load(tmp_path: Path) -> None:
    path = tmp_path / "anchored.yaml"
    path.write_text(
        "version: 1\n"
        "network:\n"
        "  allowed_fqdns: &hosts [api.contoso.com, '*.contoso.net']\n"
        "exemptions:\n"
        f"  - &sandbox {{scope: {SCOPE}, rules: ['*'], expires: 2999-12-31, reason: sandbox}}\n"
        f"  - <<: *sandbox\n    scope: {SCOPE}-2\n",
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert policy.network.allowed_fqdns == ["api.contoso.com", "*.contoso.net"]
    assert [e.scope for e in policy.exemptions] == [SCOPE, SCOPE + "-2"]
