"""Start and stop Azurite's Table service (and, with ``blob=True`` / ``queue=True``, its Blob and
Queue services) for the tests, the benchmarks and the local demo.

    with Azurite() as azurite:
        store = open_state_store(azurite.connection_string)

The launcher runs ``node_modules/.bin/azurite-table`` (installed by ``npm install`` in the
repository root; falls back to ``azurite-table`` on PATH) on 127.0.0.1 with a free port, in-memory
persistence, a throwaway working directory and telemetry disabled (Azurite otherwise reports usage to
Application Insights; the guardrail's tests never send traffic beyond loopback).

``Azurite(blob=True)`` also runs ``azurite-blob`` (the same package) on another free port and adds
``BlobEndpoint`` to the connection string (the dead-letter replay reads Event Grid's dead-letter
container there); ``Azurite(queue=True)`` runs ``azurite-queue`` (the sweep's fan-out queue, as the
Functions host's AzureWebJobsStorage has one) and adds ``QueueEndpoint``.

``python -m guardrail_workbench.azurite`` starts all three, prints the connection string and runs until
Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "Azurite",
    "AzuriteError",
    "AzuriteNotInstalledError",
    "find_azurite_table",
]

# The well-known development storage account (public; documented by Microsoft for Azurite).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

_HOST = "127.0.0.1"
_EXECUTABLE = "azurite-table"


class AzuriteError(RuntimeError):
    """Azurite could not be started (or stopped)."""


class AzuriteNotInstalledError(AzuriteError):
    """Neither node_modules/.bin/azurite-table nor azurite-table on PATH exists."""


def _repo_root() -> Path:
    # guardrail_workbench/azurite.py -> guardrail_workbench -> repository root
    return Path(__file__).resolve().parent.parent


def find_azurite_table(name: str = _EXECUTABLE) -> Path:
    """The azurite-table (or another Azurite service's) executable: the repository's
    node_modules first, then PATH."""
    local = _repo_root() / "node_modules" / ".bin" / name
    if local.exists():
        return local
    on_path = shutil.which(name)
    if on_path is not None:
        return Path(on_path)
    raise AzuriteNotInstalledError(
        f"Azurite is not installed: neither {local} nor '{name}' on PATH exists. "
        f"Run `npm install` in {_repo_root()} (package.json pins Azurite)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _azurite_answers(port: int, service: str = "Table") -> bool:
    """True when an Azurite Table (or Blob, or Queue) service, by its Server header, answers HTTP on the
    port, so a stranger that grabbed the port first is not mistaken for ours."""
    connection = http.client.HTTPConnection(_HOST, port, timeout=1.0)
    path = f"/{AZURITE_ACCOUNT_NAME}/Tables" if service == "Table" else f"/{AZURITE_ACCOUNT_NAME}?comp=list"
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return (response.getheader("Server") or "").startswith(f"Azurite-{service}")
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


class Azurite:
    """Azurite's Table service on 127.0.0.1, in memory, for as long as the context lasts.

    ``start()`` blocks until Azurite answers on the port (at most ``startup_timeout`` seconds)
    and raises :class:`AzuriteError` with Azurite's own output if it does not come up.
    ``stop()`` terminates the process group (SIGTERM, then SIGKILL) and removes the workspace;
    it is idempotent and also runs at interpreter exit.
    """

    def __init__(
        self,
        *,
        executable: str | os.PathLike[str] | None = None,
        port: int | None = None,
        startup_timeout: float = 20.0,
        blob: bool = False,
        queue: bool = False,
    ) -> None:
        self._executable = Path(executable) if executable is not None else None
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._extras = [service for service, wanted in (("Blob", blob), ("Queue", queue)) if wanted]
        self._process: subprocess.Popen[bytes] | None = None
        self._extra_processes: dict[str, subprocess.Popen[bytes]] = {}
        self._extra_ports: dict[str, int] = {}
        self._workspace: Path | None = None
        self._port: int | None = None

    # -- public surface -------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise AzuriteError("Azurite is not running")
        return self._port

    @property
    def table_endpoint(self) -> str:
        return f"http://{_HOST}:{self.port}/{AZURITE_ACCOUNT_NAME}"

    @property
    def blob_endpoint(self) -> str:
        return self._extra_endpoint("Blob")

    @property
    def queue_endpoint(self) -> str:
        return self._extra_endpoint("Queue")

    def _extra_endpoint(self, service: str) -> str:
        port = self._extra_ports.get(service)
        if port is None:
            raise AzuriteError(
                f"Azurite's {service} service is not running (start it with {service.lower()}=True)"
            )
        return f"http://{_HOST}:{port}/{AZURITE_ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        extra = "".join(
            f"{service}Endpoint={self._extra_endpoint(service)};" for service in sorted(self._extra_ports)
        )
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={AZURITE_ACCOUNT_NAME};"
            f"AccountKey={AZURITE_ACCOUNT_KEY};"
            f"TableEndpoint={self.table_endpoint};" + extra
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Azurite:
        if self.running:
            return self
        executable = self._executable or find_azurite_table()
        if self._executable is not None and not executable.exists():
            raise AzuriteNotInstalledError(f"Azurite executable {executable} does not exist")
        # A port picked by binding to :0 can be taken by someone else before Azurite binds it;
        # try a few fresh ports before giving up (unless the caller asked for a fixed one).
        attempts = 1 if self._requested_port is not None else 3
        last_error: AzuriteError | None = None
        for _ in range(attempts):
            port = self._requested_port if self._requested_port is not None else _free_port()
            try:
                self._launch(executable, port)
                return self
            except AzuriteError as error:
                last_error = error
                self.stop()
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        process, self._process = self._process, None
        extras, self._extra_processes = self._extra_processes, {}
        self._port = None
        self._extra_ports = {}
        for extra in extras.values():
            _terminate(extra)
        if process is not None:
            _terminate(process)
            atexit.unregister(self.stop)
        workspace, self._workspace = self._workspace, None
        if workspace is not None:
            shutil.rmtree(workspace, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------
    def _launch(self, executable: Path, port: int) -> None:
        self._workspace = Path(tempfile.mkdtemp(prefix="guardrail-azurite-"))
        self._process = self._spawn(executable, "Table", port)
        atexit.register(self.stop)
        self._port = port
        self._await(self._process, "Table", port)
        for service in self._extras:
            self._launch_extra(executable.with_name(f"azurite-{service.lower()}"), service)

    def _launch_extra(self, executable: Path, service: str) -> None:
        """azurite-blob / azurite-queue beside azurite-table, in the same workspace, on a free port."""
        if not executable.exists():
            on_path = shutil.which(executable.name)
            if on_path is None:
                raise AzuriteNotInstalledError(f"Azurite's {executable} does not exist (run `npm install`)")
            executable = Path(on_path)
        port = _free_port()
        self._extra_processes[service] = self._spawn(executable, service, port)
        self._await(self._extra_processes[service], service, port)
        self._extra_ports[service] = port

    def _log_path(self, service: str) -> Path:
        assert self._workspace is not None
        return self._workspace / ("azurite.log" if service == "Table" else f"azurite-{service.lower()}.log")

    def _spawn(self, executable: Path, service: str, port: int) -> subprocess.Popen[bytes]:
        """One Azurite service (`Table`, `Blob` or `Queue`) on 127.0.0.1:port, in memory, logged."""
        key = service.lower()
        command = [
            str(executable),
            f"--{key}Host",
            _HOST,
            f"--{key}Port",
            str(port),
            # Azurite 3.37 refuses --location together with --inMemoryPersistence; the workspace
            # (for anything it still writes) is its working directory instead.
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]
        with open(self._log_path(service), "wb") as log:
            try:
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._workspace,
                    start_new_session=(os.name != "nt"),
                )
            except OSError as error:  # e.g. no `node` for the script's shebang
                raise AzuriteError(
                    f"could not run {executable}: {error} (is Node.js installed and on PATH?)"
                ) from error

    def _await(self, process: subprocess.Popen[bytes], service: str, port: int) -> None:
        """Until the service answers on the port; AzuriteError with its output if it does not."""
        name = "Azurite" if service == "Table" else f"Azurite's {service} service"
        log_path = self._log_path(service)
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AzuriteError(
                    f"{name} exited with code {process.returncode} on port {port}: {_tail(log_path)}"
                )
            if _azurite_answers(port, service):
                return
            time.sleep(0.05)
        raise AzuriteError(
            f"{name} did not answer on {_HOST}:{port} within {self._startup_timeout:.0f} s: {_tail(log_path)}"
        )


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return text[-limit:].strip() or "(no output)"


def _terminate(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    if os.name == "nt":  # pragma: no cover - the team runs Linux/macOS; kept for completeness
        process.terminate()
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        if os.name == "nt":  # pragma: no cover
            process.kill()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    else:
        # The leader is gone; make sure nothing it spawned in its group survives it.
        if os.name != "nt":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Run Azurite's Table, Blob and Queue services until interrupted; print the connection string.

    SIGINT, SIGTERM and SIGHUP all stop Azurite before exiting (Azurite runs in its own process
    group, so a signal to this process alone would otherwise leave it behind)."""
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _interrupt)
    with Azurite(blob=True, queue=True) as azurite:
        print(azurite.connection_string, flush=True)
        print("Azurite Table, Blob and Queue services running; Ctrl-C to stop.", file=sys.stderr, flush=True)
        try:
            while azurite.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
