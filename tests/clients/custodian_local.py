"""Run Cloud Custodian (c7n-azure) against the local ARM emulator. Runs in .venv-custodian.

c7n-azure knows only Azure's own clouds (msrestazure's AzureCloud, AzureChinaCloud, ...); this
shim points the public cloud's Resource Manager endpoint at the emulator, then hands over to
Custodian unchanged:

    python custodian_local.py run -s OUT policy.yml          # `custodian run ...` (pull mode)
    python custodian_local.py event policy.yml event.json    # one Event Grid event, as the
                                                             # azure-event-grid function would
Environment: CUSTODIAN_ARM_ENDPOINT, AZURE_SUBSCRIPTION_ID, AZURE_USE_MSI=1 with IDENTITY_ENDPOINT /
IDENTITY_HEADER (the local token endpoint), REQUESTS_CA_BUNDLE (the emulator's CA).
"""

import json
import os
import sys
import tempfile

from msrestazure import azure_cloud

azure_cloud.AZURE_PUBLIC_CLOUD.endpoints.resource_manager = (
    os.environ["CUSTODIAN_ARM_ENDPOINT"].rstrip("/") + "/"
)


def run_event(policy_file: str, event_file: str) -> int:
    from c7n.config import Config
    from c7n.loader import PolicyLoader
    from c7n_azure.provider import Azure

    with open(event_file, encoding="utf-8") as handle:
        event = json.load(handle)
    if isinstance(event, list):  # Event Grid delivers arrays
        (event,) = event
    options = Config.empty(output_dir=tempfile.mkdtemp(prefix="custodian-event-"), regions=[])
    options = Azure().initialize(options)
    collection = PolicyLoader(options).load_file(policy_file)
    for policy in collection:
        resources = policy.push(event, None)
        print(json.dumps({"policy": policy.name, "resources": len(resources or [])}), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "event":
        sys.exit(run_event(sys.argv[2], sys.argv[3]))
    from c7n.cli import main

    sys.argv = ["custodian", *sys.argv[1:]]
    sys.exit(main())
