"""guardrail.table_batch: an entity-group transaction through the Tables client's pipeline, the
same request, answers and errors as `TableClient.submit_transaction` (held here side by side against
Azurite), without azure-core's multipart machinery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from azure.core import MatchConditions
from azure.core.pipeline import Pipeline
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient, UpdateMode
from azure.data.tables._policies import StorageHeadersPolicy
from azure.data.tables._table_batch import TableBatchOperations

from guardrail.state import TableStateStore
from guardrail.table_batch import multipart_body, response_parts, submit_transaction
from guardrail_workbench.azurite import Azurite

Submit = Callable[[Any, list[tuple[Any, ...]]], list[dict[str, str]]]
SUBMITS: dict[str, Submit] = {
    "sdk": lambda client, operations: client.submit_transaction(operations),
    "ours": submit_transaction,
}


def test_the_body_is_the_bytes_azure_core_writes() -> None:
    client = TableClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
        "t",
    )
    batch = TableBatchOperations(
        config=client._client._config,
        endpoint=f"{client.scheme}://{client._primary_hostname}",
        table_name=client.table_name,
        is_cosmos_endpoint=client._cosmos_endpoint,
    )
    etag = {"mode": UpdateMode.REPLACE, "etag": 'W/"x"', "match_condition": MatchConditions.IfNotModified}
    batch.add_operation(("upsert", {"PartitionKey": "p", "RowKey": "b", "X": "é\u2028"}))
    batch.add_operation(("update", {"PartitionKey": "p", "RowKey": "a", "X": 2}, etag))
    batch.add_operation(("delete", {"PartitionKey": "p", "RowKey": "z"}))
    with mock.patch("time.time", return_value=1_700_000_000.0):
        changeset = HttpRequest("POST", "")
        changeset.set_multipart_mixed(
            *batch.requests, policies=[StorageHeadersPolicy()], boundary="changeset_C"
        )
        request = HttpRequest("POST", "http://127.0.0.1/$batch")
        request.set_multipart_mixed(
            changeset, policies=[StorageHeadersPolicy()], enforce_https=False, boundary="batch_B"
        )
        Pipeline._prepare_multipart_mixed_request(request)  # azure-core's way: email.generator
        request.prepare_multipart_body()
        ours = multipart_body([r.serialize() for r in batch.requests], "batch_B", "changeset_C")
    assert ours == request.content


PART_HEADERS = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"


def test_response_parts_open_the_changeset() -> None:
    body = (
        b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
        + b"--changesetresponse_2\r\n"
        + PART_HEADERS
        + b'HTTP/1.1 204 No Content\r\nETag: W/"1"\r\n\r\n\r\n'
        + b"--changesetresponse_2\r\n"
        + PART_HEADERS
        + b'HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n{"a": 1}\r\n'
        b"--changesetresponse_2--\r\n--batchresponse_1--\r\n"
    )
    parts = list(response_parts(body, 'multipart/mixed; boundary="batchresponse_1"'))
    assert parts == [
        b'HTTP/1.1 204 No Content\r\nETag: W/"1"\r\n\r\n',
        b'HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n{"a": 1}',
    ]
    with pytest.raises(ValueError, match="boundary"):
        list(response_parts(body, "multipart/mixed"))


def _outcome(call: Callable[[], list[dict[str, str]]]) -> tuple[Any, ...]:
    try:
        answers = call()
    except Exception as error:  # the same exception, status and code from both
        return (type(error), getattr(error, "status_code", None), str(getattr(error, "error_code", None)))
    return ("ok", [sorted(answer) for answer in answers])


def _cases(pk: str, etag: str) -> dict[str, list[Any]]:
    on_etag = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
    return {
        "written": [
            ("upsert", {"PartitionKey": pk, "RowKey": "b", "X": "é\u2028", "N": 3}),
            ("update", {"PartitionKey": pk, "RowKey": "a", "X": 2}, on_etag),
        ],
        "exists (409)": [
            ("upsert", {"PartitionKey": pk, "RowKey": "c"}),
            ("create", {"PartitionKey": pk, "RowKey": "a"}),
        ],
        "stale etag (412)": [("update", {"PartitionKey": pk, "RowKey": "a", "X": 3}, on_etag)],
        "gone (404)": [("delete", {"PartitionKey": pk, "RowKey": "missing"})],
        "two partitions": [
            ("upsert", {"PartitionKey": pk, "RowKey": "c"}),
            ("upsert", {"PartitionKey": "x", "RowKey": "c"}),
        ],
        "not an operation": ["nope"],
    }


def _outcomes(store: TableStateStore, submit: Submit, pk: str, table_prefix: str) -> dict[str, Any]:
    client = store._client(store.tables.remediations)
    first = client.create_entity({"PartitionKey": pk, "RowKey": "a", "X": 1})
    seen: dict[str, Any] = {}
    for case, operations in _cases(pk, first["etag"]).items():
        seen[case] = _outcome(lambda: submit(client, operations))  # noqa: B023 (called at once)
    missing = store._service.get_table_client(f"{table_prefix}missing")
    seen["no table"] = _outcome(lambda: submit(missing, [("upsert", {"PartitionKey": pk, "RowKey": "c"})]))
    rows = client.query_entities("PartitionKey eq @pk", parameters={"pk": pk})
    seen["rows"] = sorted(
        (row["RowKey"], {k: v for k, v in row.items() if k != "PartitionKey"}) for row in rows
    )
    return seen


def test_answers_and_errors_are_the_sdks(azurite: Azurite, table_prefix: str) -> None:
    store = TableStateStore.from_connection_string(azurite.connection_string, table_prefix=table_prefix)
    try:
        sdk, ours = (_outcomes(store, submit, name, table_prefix) for name, submit in SUBMITS.items())
    finally:
        store.close()
    assert ours == sdk
    assert ours["written"] == ("ok", [["etag"], ["etag"]])
    assert ours["exists (409)"][1:] == (409, "EntityAlreadyExists")
    assert ours["stale etag (412)"][1] == 412 and ours["no table"][1] == 404
