"""diagnostics-missing: some diagnostic setting must send the audit (or allLogs) category group to
the policy's Log Analytics workspace. Its fix is a diagnostic setting to create, not part of the
account PATCH body (`Evaluation.diagnostic_setting`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from guardrail.resource_ids import name_key
from guardrail.rules._base import Context, Rule, RuleUnit

DIAGNOSTIC_SETTING_NAME: Final = "guardrail-audit"
_AUDIT_GROUPS: Final = frozenset({"audit", "alllogs"})

DIAGNOSTICS_MISSING = Rule(
    "diagnostics-missing",
    "medium",
    f"create the diagnostic setting {DIAGNOSTIC_SETTING_NAME} sending the audit category group to the "
    "workspace",
    True,
    "no diagnostic setting sends the audit (or allLogs) category group to the policy's workspace",
    switch="diagnostics.workspace_id",
    on=lambda policy: policy.diagnostics is not None,
    alert=f"diagnostic setting {DIAGNOSTIC_SETTING_NAME} created (audit logs to the policy's workspace)",
)


def check(ctx: Context) -> None:
    """Judged only when the caller passed the account's diagnostic settings."""
    diagnostics = ctx.policy.diagnostics
    if diagnostics is None or ctx.diagnostic_settings is None:
        return
    workspace = diagnostics.workspace_id
    if _sends_audit(ctx.diagnostic_settings, workspace):
        return
    if ctx.report(
        DIAGNOSTICS_MISSING.id,
        f"no diagnostic setting sends the audit category group to {workspace}",
        workspace,
    ):
        ctx.diagnostic_setting = {
            "name": DIAGNOSTIC_SETTING_NAME,
            "properties": {
                "workspaceId": workspace,
                "logs": [{"categoryGroup": "audit", "enabled": True}],
            },
        }


def _sends_audit(settings: Sequence[Mapping[str, Any]], workspace: str) -> bool:
    for setting in settings:
        props = setting.get("properties") if isinstance(setting, Mapping) else None
        if not isinstance(props, Mapping):
            continue
        target = props.get("workspaceId")
        if not isinstance(target, str) or name_key(target) != name_key(workspace):
            continue
        logs = props.get("logs")
        for log in logs if isinstance(logs, list) else []:
            if not isinstance(log, Mapping) or log.get("enabled") is not True:
                continue
            group = log.get("categoryGroup")
            if isinstance(group, str) and group.lower() in _AUDIT_GROUPS:
                return True
    return False


UNIT = RuleUnit(order=70, rules=(DIAGNOSTICS_MISSING,), check=check)
