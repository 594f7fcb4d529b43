"""`guardrail evaluate` and `guardrail policy validate`: output formats and exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.cli import main

from ._factory import account, account_id, subnet_id

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
SAMPLE_POLICY = str(SAMPLES / "policy.yaml")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, body: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


@pytest.fixture
def compliant(tmp_path: Path) -> str:
    return write(tmp_path, "ok.json", account(ip=["52.1.1.1"]))


@pytest.fixture
def open_account(tmp_path: Path) -> str:
    return write(tmp_path, "open.json", account(acls=None, rid=account_id(name="open")))


def test_json_one_line_per_account_and_exit_1(compliant: str, open_account: str) -> None:
    code, out, err = run("evaluate", "--format", "json", compliant, open_account)
    assert code == 1
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    for line in (first, second):
        assert list(line) == [
            "resource_id",
            "compliant",
            "findings",
            "actions",
            "remediation",
            "private_endpoint_rejections",
        ]
    assert first == {
        "resource_id": account_id(),
        "compliant": True,
        "findings": [],
        "actions": [],
        "remediation": None,
        "private_endpoint_rejections": [],
    }
    assert second["resource_id"] == account_id(name="open")
    assert second["compliant"] is False
    assert len(second["findings"]) == 1
    finding = second["findings"][0]
    assert list(finding) == ["rule", "severity", "message", "value", "exempted"]
    assert finding["rule"] == "default-action-deny"
    assert finding["severity"] == "high"
    assert finding["value"] == "absent"
    assert finding["exempted"] is False
    assert second["remediation"]["properties"]["networkAcls"]["defaultAction"] == "Deny"
    # the plan: one account PATCH, whose body is the remediation (derived from it, kept for a release)
    assert second["actions"] == [
        {
            "kind": "patch-account",
            "method": "PATCH",
            "target": account_id(name="open"),
            "body": second["remediation"],
            "rules": ["default-action-deny"],
        }
    ]


def test_all_compliant_exit_0(compliant: str) -> None:
    code, out, _ = run("evaluate", "--format", "json", compliant)
    assert code == 0
    assert json.loads(out)["compliant"] is True


def test_exempted_findings_are_marked_and_do_not_count(tmp_path: Path) -> None:
    sandbox = str(SAMPLES / "accounts" / "sandbox-exempted.json")
    code, out, _ = run(
        "evaluate", "--policy", SAMPLE_POLICY, "--format", "json", "--now", "2027-03-31", sandbox
    )
    line = json.loads(out)
    assert code == 0
    assert line["compliant"] is True
    assert [f["exempted"] for f in line["findings"]] == [True]
    assert line["remediation"] is None
    # the day after expiry the same account is not compliant
    code, out, _ = run(
        "evaluate", "--policy", SAMPLE_POLICY, "--format", "json", "--now", "2027-04-01", sandbox
    )
    assert code == 1
    assert json.loads(out)["findings"][0]["exempted"] is False


def test_text_format(compliant: str, open_account: str) -> None:
    code, out, _ = run("evaluate", compliant, open_account)
    assert code == 1
    assert "default-action-deny" in out
    assert "compliant" in out
    assert "2 accounts: 1 compliant, 1 not compliant, 1 with a remediation" in out


def test_samples_with_the_sample_policy() -> None:
    files = sorted(str(p) for p in (SAMPLES / "accounts").glob("*.json"))
    code, out, err = run(
        "evaluate", "--policy", SAMPLE_POLICY, "--format", "json", "--now", "2026-11-26", *files
    )
    assert code == 1, err
    by_name = {Path(f).stem: json.loads(line) for f, line in zip(files, out.splitlines(), strict=True)}
    assert by_name["compliant-locked-down"]["compliant"]
    assert by_name["private-endpoint-only"]["compliant"]
    bad = by_name["aiservices-open-with-bad-rules"]
    assert [f["rule"] for f in bad["findings"]] == [
        "default-action-deny",
        "ip-rule-not-public",
        "ip-rule-prefix-unsupported",
        "ip-rule-too-broad",
        "ip-rule-prefix-unsupported",
        "ip-rule-invalid",
        "vnet-rule-not-allowed",
        "bypass-not-allowed",
    ]
    assert bad["remediation"]["properties"]["networkAcls"]["ipRules"] == [
        {"value": "52.10.20.30"},
        {"value": "20.40.60.0"},
        {"value": "20.40.60.1"},
        {"value": "20.1.2.0/24"},
    ]
    oai = by_name["openai-no-network-rules"]
    # OpenAI is in bypass_allowed_kinds; local auth is reported, not fixed (remediate false)
    assert oai["remediation"] == {
        "properties": {
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "AzureServices",
                "ipRules": [],
                "virtualNetworkRules": [],
            }
        }
    }
    assert [f["rule"] for f in oai["findings"]] == ["default-action-deny", "local-auth-enabled"]


# -- bad input: exit 2, the message names the file and the problem ----------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ("", "the file is empty"),
        (" \n", "the file is empty"),
        ("[]", "the list is empty"),
        ("[3]", "input.json[0]: the body is a JSON int, not an account object"),
        ('"text"', "not an account object"),
        ('{"value": []}', "the list is empty"),
        ('{"value": {}}', '"value" is not a list of account bodies'),
        # {"account": ...} is a snapshot object (issue #24): its account must be one
        (json.dumps({"account": {"name": "x"}}), "not a Microsoft.CognitiveServices/accounts body"),
        (json.dumps({**account(), "type": "Microsoft.Storage/storageAccounts"}), "storageAccounts"),
        (json.dumps({**account(), "id": "/subscriptions/x"}), "'id' is not an account resource ID"),
        (json.dumps({**account(), "properties": []}), "'properties' must be an object"),
        (json.dumps({**account(), "kind": 3}), "'kind' must be a string"),
    ],
)
def test_bad_account_file_exit_2(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run("evaluate", "--format", "json", str(path))
    assert code == 2
    assert out == ""
    assert str(path) in err
    assert problem in err


def test_missing_and_directory_paths_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    code, _, err = run("evaluate", str(missing))
    assert code == 2
    assert f"{missing}: cannot read the file" in err
    code, _, err = run("evaluate", str(tmp_path))
    assert code == 2
    assert f"{tmp_path}: cannot read the file" in err


def test_bad_file_among_good_ones_still_reports_the_good_ones(tmp_path: Path, open_account: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("nope", encoding="utf-8")
    code, out, err = run("evaluate", "--format", "json", open_account, str(bad))
    assert code == 2
    assert len(out.splitlines()) == 1
    assert str(bad) in err
    assert open_account not in err


def test_bad_policy_exit_2(tmp_path: Path, compliant: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nnetwork:\n  allowed_ip_ranges: [300.0.0.0/8]\n", encoding="utf-8")
    code, out, err = run("evaluate", "--policy", str(policy), compliant)
    assert code == 2
    assert out == ""
    assert f"{policy}: network.allowed_ip_ranges: '300.0.0.0/8'" in err
    code, _, err = run("evaluate", "--policy", str(tmp_path / "none.yaml"), compliant)
    assert code == 2
    assert "none.yaml: cannot read the policy file" in err


def test_bad_now_exit_2(compliant: str) -> None:
    code, _, err = run("evaluate", "--now", "yesterday", compliant)
    assert code == 2
    assert "--now" in err and "yesterday" in err


@pytest.mark.parametrize(
    "argv",
    [["evaluate", "--format", "xml", "x.json"], ["evaluate"], ["frobnicate"], [], ["policy"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(*argv)
    assert code == 2
    assert "usage:" in capsys.readouterr().err


def test_policy_validate() -> None:
    code, out, err = run("policy", "validate", SAMPLE_POLICY)
    assert code == 0, err
    assert out.startswith(f"{SAMPLE_POLICY}: valid")
    assert "1 exemption(s)" in out


def test_policy_validate_bad(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nremediate:\n  no-such-rule: true\n", encoding="utf-8")
    code, out, err = run("policy", "validate", str(path))
    assert code == 2
    assert out == ""
    assert f"{path}: remediate: unknown rule 'no-such-rule'" in err


def test_through_a_subprocess(tmp_path: Path, open_account: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "guardrail", "evaluate", "--format", "json", open_account],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["findings"][0]["rule"] == "default-action-deny"
    done = subprocess.run(
        [sys.executable, "-m", "guardrail", "evaluate", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"{bad}: not JSON" in done.stderr
    assert "Traceback" not in done.stderr


def test_vnet_account_text_row_shows_report_only(tmp_path: Path) -> None:
    path = write(tmp_path, "v.json", account(vnets=[subnet_id()], subdomain=None))
    code, out, _ = run("evaluate", path)
    assert code == 1
    assert "custom-subdomain-missing" in out and "report" in out


# -- the shapes users have at hand (issue 16) --------------------------------------------------


def test_a_json_array_an_arm_list_body_and_stdin_in_any_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, open_ = account(ip=["52.1.1.1"]), account(acls=None, rid=account_id(name="open"))
    listed = write(tmp_path, "list.json", [ok, open_])  # what `az cognitiveservices account list` prints
    arm = write(tmp_path, "arm.json", {"value": [account(rid=account_id(name="arm1"))], "nextLink": None})
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(account(rid=account_id(name="piped")))))
    code, out, err = run("evaluate", "--format", "json", listed, arm, "-")
    assert err == ""
    assert code == 1  # `open` is not compliant
    ids = [json.loads(line)["resource_id"] for line in out.splitlines()]
    assert ids == [account_id(), account_id(name="open"), account_id(name="arm1"), account_id(name="piped")]


def test_stdin_through_a_subprocess() -> None:
    body = json.dumps([account(ip=["52.1.1.1"])])
    done = subprocess.run(
        [sys.executable, "-m", "guardrail", "evaluate", "--format", "json", "-"],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["compliant"] is True


def test_a_bad_element_of_a_list_is_named_and_the_others_evaluated(tmp_path: Path) -> None:
    path = write(tmp_path, "list.json", [account(ip=["52.1.1.1"]), {"kind": "OpenAI"}])
    code, out, err = run("evaluate", "--format", "json", path)
    assert code == 2
    assert len(out.splitlines()) == 1
    assert f"{path}[1]: " in err and f"{path}[0]" not in err


def test_empty_file_says_it_is_empty_and_prints_no_table(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("", encoding="utf-8")
    code, out, err = run("evaluate", str(empty))
    assert code == 2
    assert out == ""  # no empty table before the error
    assert err == f"guardrail: error: {empty}: the file is empty (expected an account body as JSON)\n"


def test_stdin_only_once(compliant: str) -> None:
    code, _, err = run("evaluate", "-", compliant, "-")
    assert code == 2
    assert "standard input (-) can be read only once" in err


@given(st.lists(st.integers(min_value=0, max_value=999), max_size=6), st.sampled_from(["list", "arm"]))
def test_every_body_of_a_list_is_evaluated_in_order(names: list[int], shape: str) -> None:
    from guardrail.cli import account_bodies

    bodies = [account(rid=account_id(name=f"a{n}")) for n in names]
    document: Any = bodies if shape == "list" else {"value": bodies, "nextLink": None}
    found = account_bodies("in.json", document)
    assert [body for _, body in found] == bodies
    assert len({label for label, _ in found}) == len(bodies)  # each body named by its place
    assert account_bodies("in.json", bodies[0] if bodies else {}) == [
        ("in.json", bodies[0] if bodies else {})
    ]


def test_a_snapshot_object_is_judged_with_its_child_resources(tmp_path: Path) -> None:
    """Issue #24: `evaluate` takes {"account", "managedNetwork", "capabilityHosts",
    "networkSecurityPerimeterConfigurations"}; the plan lists the managed network's PATCH and one
    DELETE per outbound rule; the text names the perimeter's access mode; a missing key is none."""
    rid = account_id(name="foundry")
    snapshot = {
        "account": account(rid=rid, acls={"defaultAction": "Deny", "bypass": "None"}),
        "managedNetwork": {
            "properties": {
                "managedNetwork": {
                    "isolationMode": "AllowInternetOutbound",
                    "outboundRules": {
                        "exfil": {
                            "type": "FQDN",
                            "destination": "exfil.evil.example",
                            "category": "UserDefined",
                        }
                    },
                }
            }
        },
        "networkSecurityPerimeterConfigurations": [
            {
                "properties": {
                    "networkSecurityPerimeter": {"id": "nsp-1"},
                    "resourceAssociation": {"accessMode": "Learning"},
                }
            }
        ],
    }
    path = write(tmp_path, "snapshot.json", snapshot)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nnetwork:\n  require_approved_outbound: true\n  allowed_fqdns: ['*.contoso.com']\n"
        "  require_perimeter: true\nremediate:\n  managed-network-internet-outbound: true\n",
        encoding="utf-8",
    )
    code, out, err = run("evaluate", "--policy", str(policy), "--format", "json", path)
    assert code == 1 and err == ""
    result = json.loads(out)
    assert [(a["kind"], a["method"], a["target"], a["body"]) for a in result["actions"]] == [
        (
            "patch-managed-network",
            "PATCH",
            f"{rid}/managedNetworks/default",
            {"properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}},
        ),
        ("delete-outbound-rule", "DELETE", f"{rid}/managedNetworks/default/outboundRules/exfil", None),
    ]
    assert {f["rule"] for f in result["findings"]} == {
        "managed-network-internet-outbound",
        "managed-network-outbound-rule-not-allowed",
        "perimeter-not-enforced",
    }
    code, out, _ = run("evaluate", "--policy", str(policy), path)
    assert "foundry: network security perimeter nsp-1: access mode Learning" in out
    del snapshot["networkSecurityPerimeterConfigurations"]  # missing: no perimeter at all
    code, out, _ = run(
        "evaluate", "--policy", str(policy), "--format", "json", write(tmp_path, "s2.json", snapshot)
    )
    assert "the account is in no network security perimeter" in out
    snapshot["capabilityHost"] = []  # a typo is an input error naming the keys
    code, _, err = run("evaluate", "--policy", str(policy), write(tmp_path, "s3.json", snapshot))
    assert code == 2 and "unknown keys ['capabilityHost']" in err
