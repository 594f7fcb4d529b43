"""infra/: every Bicep file parses, and the security-relevant shape of the templates holds.

Parsed with pycep-parser (the Bicep grammar checkov also uses). The structural checks pin what the
guardrail's least-privilege design promises: the custom role's exact actions, the Event Grid wiring
(AzureFunction destination, advanced filter, retry policy, dead-letter with identity), the findings
table schema, the app settings the function reads, and a documented parameter for every parameter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from tests.infra.bicep import (
    BICEP_FILES,
    INFRA,
    ROOT,
    body,
    condition,
    evaluate_list,
    parse,
    resolve,
    resources_of_type,
)
from tests.infra.bicep import code as _code

FINDINGS_COLUMNS = [
    ("TimeGenerated", "datetime"),
    ("ResourceId", "string"),
    ("SubscriptionId", "string"),
    ("ResourceGroup", "string"),
    ("AccountName", "string"),
    ("Kind", "string"),
    ("Rule", "string"),
    ("Severity", "string"),
    ("Status", "string"),
    ("Message", "string"),
    ("Value", "string"),
    ("Before", "dynamic"),
    ("After", "dynamic"),
    ("Actor", "string"),
    ("ActorSource", "string"),
    ("CorrelationId", "string"),
    ("EventId", "string"),
    ("Trigger", "string"),
    ("Mode", "string"),
    ("GuardrailVersion", "string"),
]
APP_SETTINGS = {
    "GUARDRAIL_POLICY_PATH",
    "GUARDRAIL_POLICY",
    "GUARDRAIL_MODE",
    "GUARDRAIL_SUBSCRIPTIONS",
    "GUARDRAIL_SWEEP_SCHEDULE",
    "GUARDRAIL_BREAKER_MAX_REMEDIATIONS",
    "GUARDRAIL_BREAKER_WINDOW_MINUTES",
    "GUARDRAIL_ALERT_COOLDOWN_MINUTES",
    "MONITOR_DCE_ENDPOINT",
    "MONITOR_DCR_IMMUTABLE_ID",
    "MONITOR_STREAM_NAME",
    "TEAMS_WEBHOOK_URL",
    "ACS_ENDPOINT",
    "ALERT_EMAIL_SENDER",
    "ALERT_EMAIL_RECIPIENTS",
    "AZURE_CLIENT_ID",
}
BUILTIN_ROLES = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
}


def conditional_branches(doc: dict[str, Any], value: Any) -> tuple[str, Any, Any]:
    value = resolve(doc, value)
    operands = value["operator"]["operands"]
    assert value["operator"]["type"] == "conditional"
    return operands["condition"], operands["true_value"], operands["false_value"]


def concat_args(doc: dict[str, Any], value: Any) -> list[Any]:
    value = resolve(doc, value)
    if isinstance(value, list):
        return value
    assert value["function"]["type"] == "concat", value
    out: list[Any] = []
    for arg in value["function"]["parameters"].values():
        out.extend(concat_args(doc, arg))
    return out


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------
def test_expected_bicep_files_exist() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert {
        "main.bicep",
        "mg.bicep",
        "modules/host.bicep",
        "modules/governed-subscription.bicep",
        "modules/subscription-events.bicep",
    } <= names


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    doc = BicepParser().parse(file_path=path)
    assert doc.get("resources") or doc.get("modules"), f"{path} declares nothing"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_local_modules_exist(path: Path) -> None:
    doc = BicepParser().parse(file_path=path)
    for name, module in doc.get("modules", {}).items():
        target = (path.parent / module["detail"]["path"]).resolve()
        assert target.is_file(), f"{path.name}: module {name} points to missing {target}"


# --------------------------------------------------------------------------------------------------
# Least privilege
# --------------------------------------------------------------------------------------------------
REMEDIATION_FLAGS = (
    "diagnosticsRemediation",
    "privateEndpointRemediation",
    "managedNetworkRemediation",
    "outboundRuleRemediation",
)


@pytest.mark.parametrize("template", ["main.bicep", "mg.bicep"])
def test_guardrail_role_is_one_custom_permission_block_with_actions_only(template: str) -> None:
    # Which actions: tests/infra/test_permissions.py (against guardrail/permissions.py).
    doc = parse(template)
    role = body(doc["resources"]["guardrailRole"])
    assert role["properties"]["type"] == "CustomRole"
    permissions = role["properties"]["permissions"]
    assert len(permissions) == 1
    perm = permissions[0]
    assert perm["notActions"] == [] and perm["dataActions"] == [] and perm["notDataActions"] == []
    for flag in REMEDIATION_FLAGS:
        assert doc["parameters"][flag]["default"] is False, f"{flag} must be opt-in"


def _all_role_actions() -> list[tuple[str, str, str]]:
    found = []
    for path in BICEP_FILES:
        rel = path.relative_to(INFRA).as_posix()
        doc = parse(rel)
        for name, res in resources_of_type(doc, "Microsoft.Authorization/roleDefinitions").items():
            for perm in body(res)["properties"]["permissions"]:
                flags = {name: True for name in REMEDIATION_FLAGS if name in doc.get("parameters", {})}
                actions = evaluate_list(doc, perm["actions"], flags)
                for key in ("dataActions", "notActions", "notDataActions"):
                    actions += evaluate_list(doc, perm.get(key, []), flags)
                found += [(rel, name, action) for action in actions]
    return found


def test_no_custom_role_grants_list_keys_or_wildcards() -> None:
    actions = _all_role_actions()
    assert len({(f, n) for f, n, _ in actions}) >= 3, (
        "expected the guardrail roles in main/mg and the ACS role"
    )
    for file, role, action in actions:
        assert isinstance(action, str), (file, role, action)
        assert "*" not in action, f"{file}:{role} grants wildcard {action}"
        assert "listkeys" not in action.lower(), f"{file}:{role} grants {action}"
        assert "regeneratekey" not in action.lower(), f"{file}:{role} grants {action}"


def test_no_template_reads_keys() -> None:
    for path in BICEP_FILES:
        text = _code(path)
        assert not re.search(r"listKeys|listConnectionStrings|AccountKey=", text, re.IGNORECASE), path


def test_acs_email_role_is_narrower_than_contributor() -> None:
    doc = parse("main.bicep")
    role = doc["resources"]["acsEmailRole"]
    assert condition(role) == "createAcsEmail"
    actions = concat_args(doc, body(role)["properties"]["permissions"][0]["actions"])
    assert actions and all(a.startswith("Microsoft.Communication/") for a in actions)
    assert body(role)["properties"]["assignableScopes"] != ["/"]


def test_governed_subscription_assigns_the_custom_role_on_the_subscription() -> None:
    doc = parse("modules/governed-subscription.bicep")
    assert doc["globals"]["scope"]["value"] == "subscription"
    assignments = resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
    assert len(assignments) == 1
    (assignment,) = assignments.values()
    props = body(assignment)["properties"]
    assert props["roleDefinitionId"] == "guardrailRoleDefinitionId"
    assert props["principalId"] == "guardrailPrincipalId"
    assert props["principalType"] == "ServicePrincipal"
    assert "scope" not in body(assignment), "assigned at the module's scope: the whole subscription"
    events = doc["modules"]["events"]
    assert events["detail"]["path"] == "subscription-events.bicep"


def test_host_role_assignments_are_the_documented_built_in_roles_on_single_resources() -> None:
    doc = parse("modules/host.bicep")
    roles = resolve(doc, "roles")
    for key, guid in BUILTIN_ROLES.items():
        assert roles[key] == guid, key
    scopes: dict[str, str] = {}
    for name, res in resources_of_type(doc, "Microsoft.Authorization/roleAssignments").items():
        cfg = body(res)
        scope = cfg.get("scope")
        if isinstance(scope, dict):  # hostContainers[i]: the loop's own container
            scope = scope["operator"]["operands"]["operand_1"] + "[]"
        assert isinstance(scope, str), f"{name} must be scoped to one resource, not the group"
        role_ref = cfg["properties"]["roleDefinitionId"]
        if isinstance(role_ref, dict):
            key = role_ref["function"]["parameters"]["resource_name_1"]["operator"]["operands"]["operand_2"]
            scopes[key + "@" + scope] = name
    assert {
        "storageBlobDataOwner@hostContainers[]",
        "storageBlobDataContributor@deploymentContainer",
        "storageTableDataContributor@storage",
        "storageQueueDataContributor@sweepQueues[]",
        "monitoringMetricsPublisher@dcr",
        "monitoringMetricsPublisher@appInsights",
        "keyVaultSecretsUser@keyVault",
    } == set(scopes)


def _one_resource(scope: Any) -> str | None:
    """A role assignment's scope when it is one resource: `name`, or `name[i]` (one element of a
    resource loop, e.g. one queue); None for anything else (a resource group, a subscription)."""
    if isinstance(scope, str):
        return scope
    if isinstance(scope, dict) and scope.get("operator", {}).get("type") == "index_accessor":
        operands = scope["operator"]["operands"]
        if isinstance(operands["operand_1"], str) and isinstance(operands["operand_2"], str):
            return f"{operands['operand_1']}[{operands['operand_2']}]"
    return None


def test_sweep_queue_role_is_storage_queue_data_contributor_on_the_two_sweep_queues_only() -> None:
    from guardrail.fanout import POISON_QUEUE, SWEEP_QUEUE

    doc = parse("modules/host.bicep")
    assert resolve(doc, "sweepQueueNames") == [SWEEP_QUEUE, POISON_QUEUE]
    (service,) = resources_of_type(doc, "Microsoft.Storage/storageAccounts/queueServices").values()
    assert body(service)["parent"] == "storage"
    queues = doc["resources"]["sweepQueues"]
    assert queues["config"]["loop_type"]["detail"]["array_name"] == "sweepQueueNames"
    assert body(queues) == {"parent": "queueService", "name": "queueName"}
    assert set(resources_of_type(doc, "Microsoft.Storage/storageAccounts/queueServices/queues")) == {
        "sweepQueues"
    }

    def role(cfg: dict[str, Any]) -> str:
        ref = cfg["properties"]["roleDefinitionId"]
        if not isinstance(ref, dict):  # a parameter (the ACS email role)
            return str(ref)
        name = ref["function"]["parameters"]["resource_name_1"]
        return str(name["operator"]["operands"]["operand_2"])

    queue_roles = {
        name: res
        for name, res in resources_of_type(doc, "Microsoft.Authorization/roleAssignments").items()
        if role(body(res)) == "storageQueueDataContributor"
    }
    assert set(queue_roles) == {"sweepQueueContributor"}  # nothing on the whole storage account
    assignment = queue_roles["sweepQueueContributor"]
    loop = assignment["config"]["loop_type"]
    assert loop["detail"] == {"item_name": "queueName", "index_name": "i", "array_name": "sweepQueueNames"}
    cfg = body(assignment)
    assert _one_resource(cfg["scope"]) == "sweepQueues[i]"
    principal = cfg["properties"]["principalId"]["operator"]["operands"]
    assert principal["operand_1"] == "guardrailIdentity"
    assert cfg["properties"]["principalType"] == "ServicePrincipal"
    assert "sweepQueueContributor" in json.dumps(doc["resources"]["functionApp"])  # dependsOn: the role first


# --------------------------------------------------------------------------------------------------
# Event Grid
# --------------------------------------------------------------------------------------------------
def test_subscription_system_topic_is_on_the_subscription() -> None:
    doc = parse("modules/subscription-events.bicep")
    topic = body(doc["resources"]["subscriptionTopic"])
    assert topic["location"] == "global"
    assert topic["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    assert topic["identity"] == {"type": "SystemAssigned"}, "stable across environments' PUTs"


def test_write_event_subscription_targets_the_function_with_filter_retry_and_dead_letter() -> None:
    doc = parse("modules/subscription-events.bicep")
    res = doc["resources"]["resourceWriteSubscription"]
    assert body(res)["parent"] == "subscriptionTopic"
    props = body(res)["properties"]

    destination = props["destination"]
    assert destination["endpointType"] == "AzureFunction"
    assert destination["properties"]["resourceId"].endswith("/functions/on_resource_write")
    assert destination["properties"]["maxEventsPerBatch"] == 1

    flt = props["filter"]
    assert flt["includedEventTypes"] == ["Microsoft.Resources.ResourceWriteSuccess"]
    (adv,) = flt["advancedFilters"]
    assert adv["key"] == "data.operationName"
    assert adv["operatorType"] in {"StringBeginsWith", "StringIn"}
    assert adv["values"] and all(v.startswith("Microsoft.CognitiveServices/accounts/") for v in adv["values"])
    if adv["operatorType"] == "StringBeginsWith":
        assert "Microsoft.CognitiveServices/accounts/" in adv["values"], "must cover child resources too"

    assert resolve(doc, props["retryPolicy"]) == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}

    assert "deadLetterDestination" not in props, "dead-letter must use an identity, not a key"
    dead = resolve(doc, props["deadLetterWithResourceIdentity"])
    assert dead["identity"] == {"type": "SystemAssigned"}, "the topic's own identity"
    assert dead["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert set(dead["deadLetterDestination"]["properties"]) == {"resourceId", "blobContainerName"}


def test_write_event_subscription_matches_the_contract_example() -> None:
    contract_path = (
        ROOT.parent / "shared" / "contracts" / "functions" / "event_subscription_put_body_example.json"
    )
    if not contract_path.exists():
        pytest.skip(f"{contract_path} missing: shared/ must sit beside the repository")
    contract = json.loads(contract_path.read_text())["properties"]
    doc = parse("modules/subscription-events.bicep")
    props = body(doc["resources"]["resourceWriteSubscription"])["properties"]
    assert props["destination"]["endpointType"] == contract["destination"]["endpointType"]
    assert (
        props["destination"]["properties"]["maxEventsPerBatch"]
        == contract["destination"]["properties"]["maxEventsPerBatch"]
    )
    assert props["filter"]["includedEventTypes"] == contract["filter"]["includedEventTypes"]
    assert props["eventDeliverySchema"] == contract["eventDeliverySchema"]
    assert resolve(doc, props["retryPolicy"]) == contract["retryPolicy"]
    contract_values = contract["filter"]["advancedFilters"][0]["values"]
    (adv,) = props["filter"]["advancedFilters"]
    assert all(any(v.lower().startswith(p.lower()) for p in adv["values"]) for v in contract_values)


def test_resource_notifications_are_optional_and_filtered_to_cognitive_services_accounts() -> None:
    doc = parse("modules/subscription-events.bicep")
    topic = doc["resources"]["resourceNotificationsTopic"]
    assert condition(topic) == "enableResourceNotifications"
    assert body(topic)["properties"]["topicType"] == "Microsoft.ResourceNotifications.Resources"
    sub = doc["resources"]["resourceNotificationsSubscription"]
    assert condition(sub) is not None
    props = body(sub)["properties"]
    assert props["destination"]["endpointType"] == "AzureFunction"
    assert props["destination"]["properties"]["resourceId"].endswith("/functions/on_resource_notification")
    assert props["destination"]["properties"]["maxEventsPerBatch"] == 1
    (adv,) = props["filter"]["advancedFilters"]
    assert (adv["key"], adv["operatorType"], adv["values"]) == (
        "data.resourceInfo.type",
        "StringIn",
        ["Microsoft.CognitiveServices/accounts"],
    )
    assert all(
        t.startswith("Microsoft.ResourceNotifications.Resources.")
        for t in props["filter"]["includedEventTypes"]
    )


def test_no_webhook_destinations_anywhere() -> None:
    for path in BICEP_FILES:
        assert "webhook'" not in _code(path).lower(), path


@pytest.mark.parametrize("template", ["main.bicep", "mg.bicep"])
def test_governed_subscriptions_are_a_loop_over_one_subscription_scoped_module(template: str) -> None:
    doc = parse(template)
    module = doc["modules"]["governedSubscriptions"]
    assert module["detail"]["path"] == "modules/governed-subscription.bicep"
    loop = module["config"]["loop_type"]
    item = loop["detail"]["item_name"]
    scope = module["config"]["config"]["scope"]["function"]
    assert scope["type"] == "subscription"
    assert scope["parameters"]["subscription_id"] == item


def test_mg_template_targets_a_management_group() -> None:
    doc = parse("mg.bicep")
    assert doc["globals"]["scope"]["value"] == "managementGroup"
    role = body(doc["resources"]["guardrailRole"])
    scopes = role["properties"]["assignableScopes"]
    assert len(scopes) == 1


# --------------------------------------------------------------------------------------------------
# Monitoring
# --------------------------------------------------------------------------------------------------
def test_findings_table_schema_is_exact_and_shared_with_the_dcr_stream() -> None:
    doc = parse("modules/host.bicep")
    table = body(doc["resources"]["findingsTable"])
    assert resolve(doc, table["name"]) == "GuardrailFindings_CL"
    columns = resolve(doc, table["properties"]["schema"]["columns"])
    assert [(c["name"], c["type"]) for c in columns] == FINDINGS_COLUMNS

    dcr = body(doc["resources"]["dcr"])["properties"]
    declarations = {key.strip("'"): value for key, value in dcr["streamDeclarations"].items()}
    assert set(declarations) == {"Custom-GuardrailFindings_CL"}
    stream = declarations["Custom-GuardrailFindings_CL"]
    assert [(c["name"], c["type"]) for c in resolve(doc, stream["columns"])] == FINDINGS_COLUMNS
    (flow,) = dcr["dataFlows"]
    assert [resolve(doc, s) for s in flow["streams"]] == ["Custom-GuardrailFindings_CL"]
    assert resolve(doc, flow["outputStream"]) == "Custom-GuardrailFindings_CL"
    (destination,) = dcr["destinations"]["logAnalytics"]
    assert flow["destinations"] == [destination["name"]]
    assert dcr["dataCollectionEndpointId"]["operator"]["operands"]["operand_1"] == "dce"


def test_high_severity_alert_query_and_action_group() -> None:
    doc = parse("modules/host.bicep")
    alert = body(doc["resources"]["findingsAlert"])["properties"]
    (criterion,) = alert["criteria"]["allOf"]
    query = resolve(doc, criterion["query"])
    assert "GuardrailFindings_CL" in query
    assert "Severity in ('critical', 'high')" in query
    assert "Status in ('violation', 'remediation-failed', 'remediation-suspended')" in query
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    assert alert["actions"]["actionGroups"][0]["operator"]["operands"]["operand_1"] == "actionGroup"
    receivers = body(doc["resources"]["actionGroup"])["properties"]["emailReceivers"]
    assert receivers["loop_type"]["detail"]["array_name"] == "alertEmailRecipients"


def test_workbook_covers_trend_top_accounts_actors_and_time_to_remediate() -> None:
    doc = parse("modules/host.bicep")
    workbook = body(doc["resources"]["workbook"])
    assert workbook["kind"] == "shared"
    serialized = workbook["properties"]["serializedData"]["function"]
    assert serialized["type"] == "string"
    content = resolve(doc, serialized["parameters"]["value_to_convert"])
    (group,) = [item for item in content["items"] if item["name"] == "findings"]
    queries = {
        item["name"]: item["content"]["query"] for item in group["content"]["items"] if item["type"] == 3
    }
    assert set(queries) == {"findings-over-time", "top-accounts", "top-actors", "time-to-remediate"}
    assert all("GuardrailFindings_CL" in q for q in queries.values())
    assert "timechart" in queries["findings-over-time"]
    assert "by Actor" in queries["top-actors"]
    assert "datetime_diff" in queries["time-to-remediate"] and "remediated" in queries["time-to-remediate"]


# --------------------------------------------------------------------------------------------------
# Function app
# --------------------------------------------------------------------------------------------------
def test_function_app_is_flex_consumption_python_311_with_user_assigned_identity() -> None:
    doc = parse("modules/host.bicep")
    plan = body(doc["resources"]["plan"])
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    site = body(doc["resources"]["functionApp"])
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    props = site["properties"]
    assert props["httpsOnly"] is True
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    package_identity = storage["authentication"]["userAssignedIdentityResourceId"]
    assert package_identity["operator"]["operands"]["operand_1"] == "packageIdentity", (
        "the runtime identity must not be able to rewrite its own package"
    )
    assert props["keyVaultReferenceIdentity"]["operator"]["operands"]["operand_1"] == "guardrailIdentity"


def test_storage_is_identity_only_with_the_required_containers_and_tables() -> None:
    doc = parse("modules/host.bicep")
    storage = body(doc["resources"]["storage"])["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    containers = set(resources_of_type(doc, "Microsoft.Storage/storageAccounts/blobServices/containers"))
    assert containers == {"deploymentContainer", "deadLetterContainer", "hostContainers"}
    assert resolve(doc, "hostContainerNames") == ["azure-webjobs-hosts", "azure-webjobs-secrets"]
    assert resources_of_type(doc, "Microsoft.Storage/storageAccounts/tableServices/tables")


def test_app_settings_have_exactly_the_documented_names_and_identity_based_storage() -> None:
    doc = parse("modules/host.bicep")
    settings = body(doc["resources"]["functionAppSettings"])["properties"]
    assert body(doc["resources"]["functionAppSettings"])["name"] == "appsettings"
    assert set(settings) >= APP_SETTINGS
    extra = set(settings) - APP_SETTINGS
    assert extra == {
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    }, "Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME and friends; no key-based AzureWebJobsStorage"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    flag, reference, disabled = conditional_branches(doc, settings["TEAMS_WEBHOOK_URL"])
    assert disabled == ""
    teams = resolve(doc, reference)
    assert teams.startswith("@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/")
    assert teams.endswith(")")
    assert resolve(doc, flag)["operator"]["type"] == "or"
    client_id = settings["AZURE_CLIENT_ID"]["operator"]["operands"]
    assert client_id["operand_1"] == "guardrailIdentity"
    assert resolve(doc, settings["MONITOR_STREAM_NAME"]) == "Custom-GuardrailFindings_CL"


def test_key_vault_is_rbac_with_purge_protection() -> None:
    doc = parse("modules/host.bicep")
    vault = body(doc["resources"]["keyVault"])["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    secret_module = doc["modules"]["teamsWebhookSecret"]
    assert secret_module["detail"]["path"] == "keyvault-secret.bicep"
    secret_doc = parse("modules/keyvault-secret.bicep")
    assert "secure" in {d["type"] for d in secret_doc["parameters"]["secretValue"]["decorators"]}


def test_main_defaults_match_the_guardrail_defaults() -> None:
    params = parse("main.bicep")["parameters"]
    assert params["sweepSchedule"]["default"] == "0 0 */6 * * *"
    assert params["breakerMaxRemediations"]["default"] == 3
    assert params["breakerWindowMinutes"]["default"] == 30
    assert params["alertCooldownMinutes"]["default"] == 60
    assert "secure" in {d["type"] for d in params["teamsWebhookUrl"]["decorators"]}


# --------------------------------------------------------------------------------------------------
# azd and docs
# --------------------------------------------------------------------------------------------------
def test_azure_yaml_declares_the_function_service() -> None:
    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    service = project["services"]["guardrail"]
    assert (service["project"], service["language"], service["host"]) == (".", "python", "function")
    assert project["infra"]["path"] == "infra"
    assert "postdeploy" in project["hooks"]


def test_parameters_file_is_azd_style_and_names_real_parameters() -> None:
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert params["location"]["value"] == "${AZURE_LOCATION}"
    declared = set(parse("main.bicep")["parameters"])
    assert set(params) <= declared, set(params) - declared


def test_mg_parameters_file_names_real_parameters() -> None:
    params = json.loads((INFRA / "mg.parameters.json").read_text())["parameters"]
    declared = parse("mg.bicep")["parameters"]
    assert set(params) <= set(declared), set(params) - set(declared)
    required = {name for name, p in declared.items() if "default" not in p or p["default"] is None}
    assert required <= set(params), f"mg.parameters.json lacks required {sorted(required - set(params))}"


def _documented_parameter_names() -> set[str]:
    doc = (ROOT / "docs" / "deploying.md").read_text()
    return set(re.findall(r"^\|\s*`([A-Za-z0-9_]+)`\s*\|", doc, re.MULTILINE))


@pytest.mark.parametrize("template", ["main.bicep", "mg.bicep"])
def test_every_parameter_is_documented(template: str) -> None:
    declared = set(parse(template)["parameters"])
    missing = declared - _documented_parameter_names()
    assert not missing, f"{template} parameters missing from docs/deploying.md's tables: {sorted(missing)}"


def test_docs_list_every_app_setting() -> None:
    documented = _documented_parameter_names()
    missing = APP_SETTINGS - documented
    assert not missing, f"app settings missing from docs/deploying.md's tables: {sorted(missing)}"


# --------------------------------------------------------------------------------------------------
# The templates agree with the app
# --------------------------------------------------------------------------------------------------
def test_findings_table_columns_are_the_apps_columns() -> None:
    from guardrail.findings import COLUMNS

    assert tuple(name for name, _ in FINDINGS_COLUMNS) == COLUMNS


def test_state_tables_are_the_stores_tables() -> None:
    from guardrail.state import TableNames

    doc = parse("modules/host.bicep")
    assert tuple(doc["parameters"]["stateTableNames"]["default"]) == TableNames.with_prefix().all()


def test_alert_and_workbook_use_only_statuses_and_severities_the_app_writes() -> None:
    from guardrail.findings import SEVERITIES, STATUSES

    doc = parse("modules/host.bicep")
    texts = [resolve(doc, "highSeverityQuery"), resolve(doc, "authorizationQuery")]
    content = resolve(doc, "workbookContent")
    for group in content["items"]:
        if group["type"] == 12:
            texts += [
                item["content"]["query"].replace("\\'", "'")
                for item in group["content"]["items"]
                if item["type"] == 3
            ]
    for text in texts:
        for clause in re.findall(r"(Status|Severity) (?:in \(([^)]*)\)|== '([^']*)')", text):
            field, listed, single = clause
            values = re.findall(r"'([^']*)'", listed) if listed else [single]
            allowed = STATUSES if field == "Status" else SEVERITIES
            assert set(values) <= set(allowed), f"{field} {values} not in {allowed}"


def test_mode_values_are_the_apps_modes() -> None:
    from guardrail.findings import MODES

    decorators = parse("main.bicep")["parameters"]["guardrailMode"]["decorators"]
    (allowed,) = [d["argument"] for d in decorators if d["type"] == "allowed"]
    assert set(allowed) == {"", *MODES}


def test_event_subscriptions_target_functions_the_app_defines() -> None:
    source = (ROOT / "function_app.py").read_text()
    defined = set(re.findall(r'@app\.function_name\("([^"]+)"\)', source))
    targets = set()
    for path in BICEP_FILES:
        targets |= set(re.findall(r"/functions/([A-Za-z_]+)'", path.read_text()))
    assert targets == {"on_resource_write", "on_resource_notification"}
    assert targets <= defined, targets - defined
