"""The reconcile sweep over a generated tenant of 1,000 accounts in 3 subscriptions, through the
emulator (HTTPS, paging), Azurite and the real SDK: every account ends compliant or reported."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardrail import functions
from guardrail.engine import Evaluation, evaluate
from guardrail.policy import parse_policy_text
from guardrail_workbench.stack import LocalStack
from guardrail_workbench.tenant import generate_tenant, policy_for


@pytest.fixture(scope="module")
def sweep_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, dict]]:
    out = tmp_path_factory.mktemp("sweep")
    tenant = generate_tenant(1000, 3, seed=11)
    policy = Path(out) / "policy.yaml"
    policy.write_text(policy_for(tenant), encoding="utf-8")
    stack = LocalStack(
        out_dir=out,
        policy_path=str(policy),
        page_size=100,
        receivers=False,
        extra_env={"GUARDRAIL_WRITES_PER_SECOND": "500", "GUARDRAIL_SWEEP_CONCURRENCY": "8"},
    )
    stack.start()
    stack.emulator.seed(tenant)
    stack.apply_env()
    try:
        yield stack, tenant
    finally:
        stack.stop()


def test_sweep_leaves_every_account_compliant_or_reported(sweep_stack: tuple[LocalStack, dict]) -> None:
    stack, tenant = sweep_stack
    policy = parse_policy_text(policy_for(tenant))
    now = dt.datetime.now(dt.UTC)
    before = [evaluate(a, policy, now) for a in stack.emulator.accounts()]
    assert len(before) == 1000
    needing_fix = sum(1 for e in before if isinstance(e, Evaluation) and e.remediation is not None)
    assert needing_fix > 300  # the generated mix is mostly broken

    report = functions.get_guardrail().sweep()

    assert report.listed == 1000
    assert report.errors == []
    assert report.count("remediated") == needing_fix
    after = [evaluate(a, policy, now) for a in stack.emulator.accounts()]
    for evaluation in after:
        assert isinstance(evaluation, Evaluation)
        assert evaluation.remediation is None, evaluation.resource_id  # compliant, or report-only left
    findings = Path(stack.env["GUARDRAIL_FINDINGS_FILE"]).read_text().splitlines()
    assert len(findings) >= needing_fix
    # A second sweep finds nothing left to write.
    again = functions.get_guardrail().sweep()
    assert again.count("remediated") == 0 and again.errors == []
