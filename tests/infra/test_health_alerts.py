"""Issue 17 on the parsed templates: alerts on the guardrail's own health, to the same action group
as the findings alert, each with the query or metric that says what it means; and the workbook's
health tab (last sweep, failures, dead letters, latency)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.infra.bicep import body, condition, parse, resolve


def _health_alerts() -> dict[str, dict[str, Any]]:
    host = parse("modules/host.bicep")
    rule = host["resources"]["healthAlertRules"]
    assert rule["config"]["loop_type"]["detail"]["array_name"] == "healthAlerts"
    names = resolve(host, "names")
    alerts = {}
    for alert in resolve(host, "healthAlerts"):
        key = alert["name"]["operator"]["operands"]["operand_2"]
        assert "${resourceToken}" in names[key], f"{key}: per-environment name"
        alerts[key] = {k: resolve(host, v) for k, v in alert.items()}
    return alerts


def test_health_alert_rules_go_to_the_findings_action_group_over_the_workspace() -> None:
    host = parse("modules/host.bicep")
    props = body(host["resources"]["healthAlertRules"])["properties"]["function"]["parameters"]["arg_1"]
    assert props["actions"]["actionGroups"][0]["operator"]["operands"]["operand_1"] == "actionGroup"
    findings = body(host["resources"]["findingsAlert"])["properties"]
    assert findings["actions"]["actionGroups"] == props["actions"]["actionGroups"], "the same action group"
    assert props["scopes"][0]["operator"]["operands"]["operand_1"] == "workspace"
    assert props["enabled"] == "healthAlertsEnabled"
    (criterion,) = props["criteria"]["allOf"]
    assert criterion["timeAggregation"] == "Count"
    assert set(_health_alerts()) == {"functionFailuresAlert", "heartbeatAlert", "authorizationAlert"}


def test_function_failures_alert_counts_failed_invocations() -> None:
    alert = _health_alerts()["functionFailuresAlert"]
    assert alert["query"].lstrip().startswith("AppRequests")
    assert "| where Success == false" in alert["query"]
    assert (alert["operator"], alert["threshold"]) == ("GreaterThan", 0)


def test_heartbeat_alert_fires_after_twice_the_sweep_interval_without_a_heartbeat() -> None:
    host = parse("modules/host.bicep")
    alert = _health_alerts()["heartbeatAlert"]
    query = alert["query"].replace("\\n", "\n").replace("\\'", "'")
    assert "GuardrailFindings_CL" in query
    assert "| where Rule == 'guardrail-heartbeat'" in query
    assert "| where TimeGenerated > ago(${heartbeatWindowHours}h)" in query
    window = resolve(host, "heartbeatWindowHours")["operator"]
    assert window["type"] == "multiply" and set(window["operands"].values()) == {2, "sweepIntervalHours"}
    assert (alert["operator"], alert["threshold"]) == ("LessThan", 1), "no heartbeat row at all"
    assert alert["overrideQueryTimeRange"] == "PT${heartbeatWindowHours}H", (
        "the query must see the whole window"
    )


def test_sweep_interval_default_matches_the_sweep_schedule_default() -> None:
    params = parse("main.bicep")["parameters"]
    hours = re.fullmatch(r"0 0 \*/(\d+) \* \* \*", params["sweepSchedule"]["default"])
    assert hours is not None
    assert params["sweepIntervalHours"]["default"] == int(hours.group(1))
    host_params = parse("main.bicep")["modules"]["host"]["config"]["params"]
    assert host_params["sweepIntervalHours"] == "sweepIntervalHours"


def test_lost_role_alert_counts_authorization_failed_remediations() -> None:
    alert = _health_alerts()["authorizationAlert"]
    query = alert["query"]
    assert "GuardrailFindings_CL" in query
    assert "| where Status == 'remediation-failed'" in query
    assert "| where Message contains 'AuthorizationFailed'" in query, "also LinkedAuthorizationFailed"
    assert (alert["operator"], alert["threshold"]) == ("GreaterThan", 0)


def test_delivery_alerts_watch_dead_letters_and_failed_deliveries_of_this_environments_subscription() -> None:
    doc = parse("modules/delivery-alerts.bicep")
    metrics = {m["metricName"]: m for m in resolve(doc, "metrics")}
    assert set(metrics) == {"DeadLetteredCount", "DeliveryAttemptFailCount"}
    alerts = doc["resources"]["alerts"]
    assert alerts["type"] == "Microsoft.Insights/metricAlerts" and alerts["api_version"] == "2018-03-01"
    props = body(alerts)["properties"]
    assert props["scopes"] == ["topicId"]
    (criterion,) = props["criteria"]["allOf"]
    assert props["criteria"]["'odata.type'"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    assert criterion["metricNamespace"] == "Microsoft.EventGrid/systemTopics"
    assert (criterion["operator"], criterion["threshold"], criterion["timeAggregation"]) == (
        "GreaterThan",
        0,
        "Total",
    )
    # The topic is shared with other environments: only this environment's event subscription counts.
    (dimension,) = criterion["dimensions"]
    assert (dimension["name"], dimension["operator"], dimension["values"]) == (
        "EventSubscriptionName",
        "Include",
        ["eventSubscriptionName"],
    )
    assert props["actions"] == [{"actionGroupId": "actionGroupId"}]


def test_every_system_topic_gets_its_delivery_alerts_in_the_wiring_pass() -> None:
    doc = parse("modules/subscription-events.bicep")
    wiring = {
        "writeDeliveryAlerts": ("subscriptionTopic", "writeSubscriptionName"),
        "notificationDeliveryAlerts": ("resourceNotificationsTopic", "notificationSubscriptionName"),
    }
    for module_name, (topic, subscription) in wiring.items():
        module = doc["modules"][module_name]
        assert module["detail"]["path"] == "delivery-alerts.bicep"
        text = json.dumps(condition(module))
        assert "wireEventSubscriptions" in text and "actionGroupId" in text
        params = module["config"]["config"]["params"]
        assert topic in json.dumps(params["topicId"])
        assert params["eventSubscriptionName"] == subscription
        assert "${environmentToken}" in params["namePrefix"]
    main = parse("main.bicep")
    passed = main["modules"]["governedSubscriptions"]["config"]["config"]["params"]["actionGroupId"]
    assert passed["operator"]["operands"]["condition"] == "healthAlertsEnabled"


def _health_tab() -> dict[str, dict[str, Any]]:
    host = parse("modules/host.bicep")
    content = resolve(host, "workbookContent")
    (tabs,) = [item for item in content["items"] if item["type"] == 11]
    assert {link["subTarget"] for link in tabs["content"]["links"]} == {"findings", "health"}
    (health,) = [item for item in content["items"] if item["name"] == "health"]
    assert health["conditionalVisibility"] == {
        "parameterName": "selectedTab",
        "comparison": "isEqualTo",
        "value": "health",
    }
    return {item["name"]: item["content"] for item in health["content"]["items"]}


def test_workbook_health_tab_shows_last_sweep_failures_dead_letters_and_latency() -> None:
    items = _health_tab()
    assert {"last-sweep", "function-failures", "dead-letters", "latency"} <= set(items)
    assert (
        "guardrail-heartbeat" in items["last-sweep"]["query"]
        and "max(TimeGenerated)" in items["last-sweep"]["query"]
    )
    assert "countif(Success == false)" in items["function-failures"]["query"]
    assert "percentile(DurationMs, 95)" in items["latency"]["query"]
    dead = items["dead-letters"]
    assert dead["resourceType"] == "microsoft.eventgrid/systemtopics"
    assert dead["resourceIds"] == "systemTopicIds"
    assert {m["metric"].split("--")[1] for m in dead["metrics"]} == {
        "DeadLetteredCount",
        "DeliveryAttemptFailCount",
    }


def test_workbook_topics_are_the_topics_the_governed_subscriptions_get() -> None:
    main = parse("main.bicep")
    topics = main["variables"]["systemTopicIds"]["value"]
    assert topics["loop_type"]["detail"] == {"item_name": "id", "array_name": "governed"}
    assert topics["config"] == (
        "/subscriptions/${id}/resourceGroups/${eventsResourceGroupName}"
        "/providers/Microsoft.EventGrid/systemTopics/evgt-guardrail-${id}"
    )
    assert main["modules"]["host"]["config"]["params"]["systemTopicIds"] == "systemTopicIds"
    events = parse("modules/subscription-events.bicep")
    assert (
        events["parameters"]["subscriptionTopicName"]["default"]
        == "evgt-guardrail-${subscription().subscriptionId}"
    )
