"""Issue 18 on the parsed templates: deployments that survive their second day.

Second environment (names carry the environment token; the shared system topic handled on purpose),
no same-deployment custom-role race, query validation skipped for the new tables, the vault's recovery,
and the security items (secure webhook parameter, no unused queue role, blob roles per container,
no basic publishing credentials, .funcignore)."""

from __future__ import annotations

import json

from tests.infra.bicep import INFRA, ROOT, body, condition, parse, resolve, resources_of_type

# ------------------------------------------------------------------ item 2: second environment


def test_event_subscription_names_carry_the_environment_token() -> None:
    doc = parse("modules/subscription-events.bicep")
    for resource, variable in (
        ("resourceWriteSubscription", "writeSubscriptionName"),
        ("resourceNotificationsSubscription", "notificationSubscriptionName"),
    ):
        assert body(doc["resources"][resource])["name"] == variable
        assert "${environmentToken}" in resolve(doc, variable)
    assert doc["parameters"]["environmentToken"].get("default") is None, "every caller must pass its token"


def test_governed_subscription_module_gets_the_environment_token_from_both_entry_points() -> None:
    main = parse("main.bicep")
    params = main["modules"]["governedSubscriptions"]["config"]["config"]["params"]
    assert params["environmentToken"] == "resourceToken"
    assert "'environmentName'" in json.dumps(resolve(main, "resourceToken")).replace('"', "'")
    mg = parse("mg.bicep")
    assert (
        mg["modules"]["governedSubscriptions"]["config"]["config"]["params"]["environmentToken"]
        == "environmentToken"
    )
    inner = parse("modules/governed-subscription.bicep")
    assert inner["modules"]["events"]["config"]["params"]["environmentToken"] == "environmentToken"


def test_role_ids_and_names_carry_the_environment_token() -> None:
    main = parse("main.bicep")
    for resource, display in (
        ("guardrailRole", "guardrailRoleDisplayName"),
        ("acsEmailRole", "acsEmailRoleDisplayName"),
    ):
        role = body(main["resources"][resource])
        guid_args = role["name"]["function"]["parameters"]
        assert "resourceToken" in guid_args.values(), (
            f"{resource}: the definition ID must differ per environment"
        )
        assert role["properties"]["roleName"] == display
        assert "${resourceToken}" in resolve(main, display) and "${environmentName}" in resolve(main, display)
    mg = body(parse("mg.bicep")["resources"]["guardrailRole"])
    assert "environmentToken" in mg["name"]["function"]["parameters"].values()
    assert "${environmentToken}" in mg["properties"]["roleName"]


def test_the_system_topic_is_shared_per_subscription_on_purpose() -> None:
    doc = parse("modules/subscription-events.bicep")
    # One system topic per source: the name is per subscription, not per environment...
    for param in ("subscriptionTopicName", "resourceNotificationsTopicName"):
        default = doc["parameters"][param]["default"]
        assert "subscription().subscriptionId" in default and "environmentToken" not in default
    for topic in ("subscriptionTopic", "resourceNotificationsTopic"):
        props = body(doc["resources"][topic])
        # ...no environment claims it (no azd-env-name tag), and its identity is its own, which a second
        # environment's PUT does not replace.
        assert props["tags"] == "sharedTags"
        assert props["identity"] == {"type": "SystemAssigned"}
    main = parse("main.bicep")
    assert "azd-env-name" not in {key.strip("'") for key in resolve(main, "sharedTags")}
    assert "azd-env-name" in {key.strip("'") for key in resolve(main, "tags")}
    events_group = body(parse("modules/governed-subscription.bicep")["resources"]["eventsGroup"])
    assert events_group["tags"] == "sharedTags"


def test_each_environment_grants_the_topic_identity_write_on_its_own_dead_letter_container() -> None:
    doc = parse("modules/subscription-events.bicep")
    access = doc["modules"]["subscriptionTopicDeadLetterAccess"]
    assert access["detail"]["path"] == "deadletter-access.bicep"
    params = access["config"]["params"]
    principal = params["principalId"]["operator"]["operands"]
    assert principal["operand_1"] == "subscriptionTopic"
    assert json.dumps(principal["operand_2"]).count("principalId") == 1
    module = parse("modules/deadletter-access.bicep")
    (assignment,) = resources_of_type(module, "Microsoft.Authorization/roleAssignments").values()
    scope = body(assignment)["scope"]["operator"]
    assert scope["type"] == "nested_resource_accessor" and scope["operands"]["operand_1"] == "storage"
    assert scope["operands"]["operand_2"]["operator"]["operands"] == {
        "operand_1": "blobService",
        "operand_2": "container",
    }
    role = body(assignment)["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    assert resolve(module, role) == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # Storage Blob Data Contributor


def test_no_user_assigned_event_grid_identity_is_left() -> None:
    host = parse("modules/host.bicep")
    assert "eventGridIdentity" not in host["resources"]
    assert "eventGridIdentityResourceId" not in parse("mg.bicep")["parameters"]


# ------------------------------------------------------------------ item 4: first-deploy races


def test_custom_roles_are_assigned_only_in_the_wiring_pass() -> None:
    governed = parse("modules/governed-subscription.bicep")
    assert condition(governed["resources"]["guardrailRoleAssignment"]) == "wireEventSubscriptions"
    main = parse("main.bicep")
    assert main["modules"]["host"]["config"]["params"]["assignCustomRoles"] == "wireEventSubscriptions"
    host = parse("modules/host.bicep")
    acs = condition(host["resources"]["acsEmailSender"])
    assert "assignCustomRoles" in json.dumps(acs)
    # The wiring pass is a later deployment: azd's first provision runs with it off.
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["wireEventSubscriptions"]["value"] == "${GUARDRAIL_WIRE_EVENTS=false}"


def test_every_scheduled_query_alert_skips_query_validation() -> None:
    host = parse("modules/host.bicep")
    rules = resources_of_type(host, "Microsoft.Insights/scheduledQueryRules")
    assert set(rules) == {"findingsAlert", "healthAlertRules"}
    for name, rule in rules.items():
        props = body(rule)["properties"]
        if "function" in props:  # union(properties, optional override)
            props = props["function"]["parameters"]["arg_1"]
        assert props["skipQueryValidation"] is True, name


# ------------------------------------------------------------------ item 6: the vault


def test_key_vault_keeps_purge_protection_and_can_be_recovered() -> None:
    host = parse("modules/host.bicep")
    vault = body(host["resources"]["keyVault"])["properties"]
    assert vault["enablePurgeProtection"] is True
    mode = vault["createMode"]["operator"]["operands"]
    assert (mode["condition"], mode["true_value"], mode["false_value"]) == (
        "keyVaultRecover",
        "recover",
        "default",
    )
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["keyVaultRecover"]["value"] == "${GUARDRAIL_KEY_VAULT_RECOVER=false}"


# ------------------------------------------------------------------ item 7: security


def test_teams_webhook_is_a_secure_parameter_azd_can_resolve_from_a_secret() -> None:
    main = parse("main.bicep")
    assert "secure" in {d["type"] for d in main["parameters"]["teamsWebhookUrl"]["decorators"]}
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    # `azd env set-secret TEAMS_WEBHOOK_URL` stores a Key Vault reference under this key.
    assert params["teamsWebhookUrl"]["value"] == "${TEAMS_WEBHOOK_URL}"


def test_the_queue_role_exists_only_with_the_sweep_queues_and_only_on_them() -> None:
    # The fanned-out sweep (guardrail.fanout) has the only queues; the role is on those two queues,
    # never the account (tests/infra/test_bicep.py checks the assignment's loop and scope).
    host = parse("modules/host.bicep")
    assert set(resources_of_type(host, "Microsoft.Storage/storageAccounts/queueServices/queues")) == {
        "sweepQueues"
    }
    queue_roles = [
        name
        for name, res in resources_of_type(host, "Microsoft.Authorization/roleAssignments").items()
        if "storageQueueDataContributor" in str(body(res)["properties"]["roleDefinitionId"])
    ]
    assert queue_roles == ["sweepQueueContributor"]
    for path in INFRA.rglob("*.bicep"):
        if path.name != "host.bicep":
            assert "974c5e8b-45b9-4653-ba55-5f855dd0fb88" not in path.read_text(), path


def test_blob_owner_is_granted_on_the_host_containers_only() -> None:
    host = parse("modules/host.bicep")
    owner = host["resources"]["storageBlobOwner"]
    assert owner["config"]["loop_type"]["detail"]["array_name"] == "hostContainerNames"
    assert body(owner)["scope"]["operator"]["operands"]["operand_1"] == "hostContainers"
    package = body(host["resources"]["packageWriter"])
    assert package["scope"] == "deploymentContainer"
    assert package["properties"]["principalId"]["operator"]["operands"]["operand_1"] == "packageIdentity"


def test_basic_publishing_credentials_are_off_for_scm_and_ftp() -> None:
    host = parse("modules/host.bicep")
    policies = host["resources"]["basicPublishingCredentials"]
    assert policies["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    assert policies["config"]["loop_type"]["detail"]["array_name"] == ["scm", "ftp"]
    cfg = body(policies)
    assert cfg["parent"] == "functionApp"
    assert cfg["properties"] == {"allow": False}


def test_funcignore_keeps_build_output_out_of_the_package() -> None:
    lines = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()}
    assert {"build", "*.egg-info"} <= lines
