"""The Azurite launcher the state tests (and the demo) rely on."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from guardrail_workbench import azurite as azurite_module
from guardrail_workbench.azurite import (
    AZURITE_ACCOUNT_KEY,
    Azurite,
    AzuriteError,
    AzuriteNotInstalledError,
    find_azurite_table,
)


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_session_azurite_is_up_with_the_documented_connection_string(azurite: Azurite) -> None:
    assert azurite.running
    assert answers(azurite.port)
    assert azurite.connection_string == (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{azurite.port}/devstoreaccount1;"
    )


def test_stop_ends_the_process_and_frees_the_port() -> None:
    instance = Azurite().start()
    process = instance._process
    assert process is not None
    port = instance.port
    assert answers(port)
    instance.stop()
    assert process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    assert not answers(port)
    assert not instance.running
    instance.stop()  # idempotent
    with pytest.raises(AzuriteError, match="not running"):
        _ = instance.connection_string


def test_missing_azurite_says_to_run_npm_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azurite_module, "_repo_root", lambda: tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(AzuriteNotInstalledError, match="npm install"):
        find_azurite_table()
    with pytest.raises(AzuriteNotInstalledError, match="npm install"):
        Azurite().start()


def test_an_azurite_that_dies_at_start_is_reported_with_its_output(tmp_path: Path) -> None:
    script = tmp_path / "azurite-table"
    script.write_text("#!/bin/sh\necho 'port in use, or something' >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(AzuriteError, match="port in use, or something"):
        Azurite(executable=script, startup_timeout=5).start()


def test_a_port_held_by_someone_else_is_not_mistaken_for_azurite() -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen(8)
        port = stranger.getsockname()[1]
        instance = Azurite(port=port, startup_timeout=15)
        with pytest.raises(AzuriteError, match=str(port)):
            instance.start()
        assert not instance.running


def test_queue_service_runs_beside_the_table_service_and_stops_with_it() -> None:
    from azure.storage.queue import QueueClient

    instance = Azurite(queue=True).start()
    try:
        assert f"QueueEndpoint={instance.queue_endpoint};" in instance.connection_string
        queue = QueueClient.from_connection_string(instance.connection_string, "launcher-check")
        queue.create_queue()
        queue.send_message("hello")
        assert [m.content for m in queue.receive_messages()] == ["hello"]
        process = instance._extra_processes.get("Queue")
        assert process is not None
    finally:
        instance.stop()
    assert process.poll() is not None
    with pytest.raises(AzuriteError, match="Queue service is not running"):
        _ = instance.queue_endpoint
