"""The ARM emulator in its own process, for the benchmarks (the default; `--emulator-in-process`
keeps the old way).

In Azure, ARM is not on the guardrail's CPU. An emulator in the benchmark's own process shares its
GIL with the guardrail under test (TLS, HTTP parsing and the ARM logic of every request), so the
figures would charge the guardrail for the emulator's work. `EmulatorProcess` runs
`python -m guardrail_workbench.emulator --port 0` as a child and drives it only through its HTTP
control API (`/_emulator/*`): the tenant (PUT/GET tenant), faults, settings, the request counters
(`/_emulator/stats`: answers by status, write windows per subscription) and events. It offers the
subset of `Emulator`'s Python API the benchmarks use, so `LocalStack.emulator` can be one.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import ROOT, cpu_seconds


class _Faults:
    def __init__(self, owner: EmulatorProcess) -> None:
        self._owner = owner

    def add(self, *, action: str = "respond", **fields: Any) -> dict[str, Any]:
        names = {"resource_id": "resourceId", "retry_after": "retryAfter"}
        body = {names.get(k, k): v for k, v in fields.items()}
        body["action"] = "status" if action == "respond" else action
        return dict(self._owner.call("POST", "/_emulator/faults", body))


class _App:
    """What callers read of `Emulator.app`; `keep_request_log` is a control API setting."""

    def __init__(self, owner: EmulatorProcess) -> None:
        self._owner = owner
        self.tenant_id = ""

    @property
    def keep_request_log(self) -> bool:
        return bool(self._owner.call("GET", "/_emulator/settings")["requestLog"])

    @keep_request_log.setter
    def keep_request_log(self, value: bool) -> None:
        self._owner.call("PATCH", "/_emulator/settings", {"requestLog": value})

    @property
    def request_count(self) -> int:
        return int(self._owner.stats()["requests"])


class EmulatorProcess:
    """`with EmulatorProcess(write_rate=10) as arm:` — the emulator as a child process on 127.0.0.1."""

    def __init__(self, *, page_size: int = 100, write_rate: float | None = None) -> None:
        self.page_size = page_size
        self.write_rate = write_rate
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.ca_bundle = ""
        self.port = 0
        self.faults = _Faults(self)
        self.app = _App(self)
        self._local = threading.local()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> EmulatorProcess:
        if self.process is not None:
            return self
        command = [sys.executable, "-m", "guardrail_workbench.emulator", "--port", "0"]
        command += ["--page-size", str(self.page_size)]
        if self.write_rate is not None:
            command += ["--write-rate", str(self.write_rate)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in stop; shown if it fails to start)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env, cwd=ROOT
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        while True:  # the start-up document: indented JSON, ending with a "}" line
            line = self.process.stdout.readline()
            if not line:
                self.process.wait()
                self._stderr.seek(0)
                raise RuntimeError(f"the emulator process exited before it was ready: {self._stderr.read()}")
            lines.append(line)
            if line.rstrip() == "}":
                break
        info = json.loads("".join(lines))
        self.endpoint = info["endpoint"]
        # The child's CA signs only the emulator's certificate; the local receivers in this process
        # (Teams, email, Monitor) use this process's CA: one bundle trusts both.
        from guardrail_workbench import tls

        self._bundle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop)
            mode="w", suffix="-ca.pem", prefix="bench-emulator-"
        )
        for path in (info["ca_bundle"], tls.ca_bundle_path()):
            self._bundle.write(Path(path).read_text(encoding="utf-8").rstrip() + "\n")
        self._bundle.flush()
        self.ca_bundle = self._bundle.name
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self._context = ssl.create_default_context(cafile=self.ca_bundle)
        self.app.tenant_id = str(self.dump().get("tenantId", ""))
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        self._stderr.close()
        self._bundle.close()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the control API ------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> Any:
        connection = getattr(self._local, "connection", None)
        for attempt in (1, 2):
            if connection is None:
                connection = http.client.HTTPSConnection(
                    "127.0.0.1", self.port, context=self._context, timeout=120
                )
                self._local.connection = connection
            try:
                payload = None if body is None else json.dumps(body).encode()
                connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = self._local.connection = None
                if attempt == 2:
                    raise
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def seed(self, tenant: dict[str, Any]) -> None:
        self.call("PUT", "/_emulator/tenant", tenant)

    def generate(
        self, accounts: int, subscriptions: int, *, seed: int, open_fraction: float | None = None
    ) -> int:
        """`POST /_emulator/tenant/generate`: the emulator makes and seeds `generate_tenant(...)`'s
        tenant itself (the same as `seed(generate_tenant(...))`, without sending every body)."""
        body: dict[str, Any] = {"accounts": accounts, "subscriptions": subscriptions, "seed": seed}
        if open_fraction is not None:
            body["openFraction"] = open_fraction
        return int(self.call("POST", "/_emulator/tenant/generate", body)["accounts"])

    def memory_mib(self) -> dict[str, float]:
        """The emulator process's resident memory now (`rss`) and at its peak so far (`peak`), MiB,
        and its thread count (`threads`: one per open client connection, plus a few)."""
        fields = {"VmRSS": "rss", "VmHWM": "peak", "Threads": "threads"}
        found: dict[str, float] = {}
        if self.process is not None:
            for line in Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8").splitlines():
                key, _, value = line.partition(":")
                if key == "Threads":
                    found["threads"] = int(value)
                elif key in fields:
                    found[fields[key]] = round(int(value.split()[0]) / 1024, 1)
        return found

    def dump(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_emulator/tenant"))

    def accounts(self) -> list[dict[str, Any]]:
        return [
            account
            for sub in self.dump()["subscriptions"]
            for group in sub.get("resourceGroups", [])
            for account in group.get("accounts", [])
        ]

    def put_account(self, body: dict[str, Any], resource_id: str) -> None:
        """Create or replace one account directly (no event), as `Emulator.put_account`: the tenant
        is read, the account put in its resource group, and the tenant written back."""
        parts = resource_id.strip("/").split("/")
        subscription, group, name = parts[1], parts[3], parts[-1]
        tenant = self.dump()
        sub = next(
            (s for s in tenant["subscriptions"] if s["subscriptionId"].lower() == subscription.lower()), None
        )
        if sub is None:
            sub = {"subscriptionId": subscription, "resourceGroups": []}
            tenant["subscriptions"].append(sub)
        rg = next((g for g in sub["resourceGroups"] if g["name"].lower() == group.lower()), None)
        if rg is None:
            rg = {"name": group, "accounts": []}
            sub["resourceGroups"].append(rg)
        rg["accounts"] = [a for a in rg.get("accounts", []) if str(a["name"]).lower() != name.lower()]
        rg["accounts"].append({**body, "name": name})
        self.seed(tenant)

    def account(self, resource_id: str) -> dict[str, Any] | None:
        wanted = resource_id.rstrip("/").lower()
        return next((a for a in self.accounts() if str(a["id"]).lower() == wanted), None)

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/_emulator/events?since=0")["events"])

    def wait_idle(self, timeout: float) -> bool:
        """Until no event is queued or being delivered (retries included) and none was emitted for
        a moment: every subscriber has answered, and the events its handlers caused were delivered
        too. False when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            state = self.call("GET", "/_emulator/events?since=1000000000")
            if int(state["pending"]) == 0:
                if int(state["next"]) == last:
                    return True
                last = int(state["next"])
                time.sleep(0.3)
                continue
            last = -1
            time.sleep(0.05)
        return False

    def subscribe(self, urls: list[str], kinds: list[str], **options: Any) -> dict[str, Any]:
        """`POST /_emulator/subscriptions`: deliver these kinds of events to `urls` (each attempt to
        the next); `options`: concurrency, retryDelays, timeout."""
        body = {"url": urls[0], "urls": urls[1:], "kinds": kinds, **options}
        return dict(self.call("POST", "/_emulator/subscriptions", body))

    def subscriptions(self) -> list[dict[str, Any]]:
        """`GET /_emulator/subscriptions`: each one's deliveries, attempts and deliveries given up."""
        return list(self.call("GET", "/_emulator/subscriptions")["subscriptions"])

    def stats(self) -> dict[str, Any]:
        """`GET /_emulator/stats`: {"requests", "statuses": {"PATCH 429": n}, "writes": {sub: {...}}}."""
        return dict(self.call("GET", "/_emulator/stats"))

    def reset_stats(self) -> None:
        self.call("DELETE", "/_emulator/stats")

    def cpu_seconds(self) -> float | None:
        """The emulator process's CPU time so far (user + system)."""
        return cpu_seconds(f"/proc/{self.process.pid}/stat") if self.process is not None else None
