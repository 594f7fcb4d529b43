"""diagnostics-missing: some diagnostic setting must send the audit (or allLogs) category group to
the policy's Log Analytics workspace. It reads the account's diagnostic settings (an extension
resource, read only when the policy names a workspace); its fix is the action
`put-diagnostic-setting` (a PUT of the setting), not part of the account PATCH body. Creating a
setting that sends logs to the policy's own workspace lets nothing in or out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from guardrail.actions import Action, ActionType, ChildRead, Snapshot
from guardrail.rules._base import Context, Rule, RuleUnit

DIAGNOSTIC_SETTING_NAME: Final = "guardrail-audit"
_AUDIT_GROUPS: Final = frozenset({"audit", "alllogs"})
SETTINGS: Final = "diagnosticSettings"
_PATH: Final = "providers/Microsoft.Insights/diagnosticSettings"

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
    action="put-diagnostic-setting",
    shows="@action",
)


def check(ctx: Context) -> None:
    """Judged only when the snapshot holds the account's diagnostic settings."""
    diagnostics = ctx.policy.diagnostics
    settings = ctx.children.get(SETTINGS)
    if diagnostics is None or settings is None:
        return
    workspace = diagnostics.workspace_id
    if _sends_audit(settings, workspace):
        return
    if ctx.report(
        DIAGNOSTICS_MISSING.id,
        f"no diagnostic setting sends the audit category group to {workspace}",
        workspace,
    ):
        ctx.act(
            Action(
                PUT_SETTING.kind,
                PUT_SETTING.method,
                f"{ctx.resource_id}/{_PATH}/{DIAGNOSTIC_SETTING_NAME}",
                _setting(workspace),
                (DIAGNOSTICS_MISSING.id,),
                (workspace,),
            )
        )


def _setting(workspace: str) -> dict[str, Any]:
    return {"properties": {"workspaceId": workspace, "logs": [{"categoryGroup": "audit", "enabled": True}]}}


def _setting_widens(before: Snapshot, action: Action) -> list[str]:
    """Only the guardrail's own setting, sending audit logs to a workspace, and nothing else."""
    expected = f"{before.resource_id}/{_PATH}/{DIAGNOSTIC_SETTING_NAME}".lower()
    props = (action.body or {}).get("properties")
    workspace = props.get("workspaceId") if isinstance(props, Mapping) else None
    if action.target.lower() != expected or not isinstance(workspace, str):
        return [f"{action.target} is not the guardrail's diagnostic setting of {before.resource_id}"]
    if action.body != _setting(workspace):
        return ["a diagnostic setting body other than the audit logs to a workspace"]
    return []


PUT_SETTING: Final = ActionType(
    "put-diagnostic-setting",
    "PUT",
    f"PUT the diagnostic setting {DIAGNOSTIC_SETTING_NAME} (audit logs to the policy's workspace)",
    _setting_widens,
)


def _sends_audit(settings: Sequence[Mapping[str, Any]], workspace: str) -> bool:
    for setting in settings:
        props = setting.get("properties") if isinstance(setting, Mapping) else None
        if not isinstance(props, Mapping):
            continue
        target = props.get("workspaceId")
        if not isinstance(target, str) or target.lower() != workspace.lower():
            continue
        logs = props.get("logs")
        for log in logs if isinstance(logs, list) else []:
            if not isinstance(log, Mapping) or log.get("enabled") is not True:
                continue
            group = log.get("categoryGroup")
            if isinstance(group, str) and group.lower() in _AUDIT_GROUPS:
                return True
    return False


UNIT = RuleUnit(
    order=70,
    rules=(DIAGNOSTICS_MISSING,),
    check=check,
    reads=(
        ChildRead(
            SETTINGS,
            _PATH,
            "2021-05-01-preview",
            many=True,
            on=lambda policy: policy.diagnostics is not None,
            action="Microsoft.Insights/diagnosticSettings/read",
        ),
    ),
    actions=(PUT_SETTING,),
)
