"""Findings (and alerts) as JSON Lines: a file sink for local runs and tests, and a log sink
that writes one structured JSON line per record to the `guardrail.findings` logger."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail import escaping
from guardrail.findings import FindingRecord
from guardrail.sinks._common import DeliveryResult, describe_error

if TYPE_CHECKING:
    from guardrail.alerts import Alert

log = escaping.logger("guardrail.sinks.jsonl")
findings_log = escaping.logger("guardrail.findings")


def _line(obj: Any) -> str:
    from guardrail.escaping import json_line

    return json_line(obj)


class JsonlSink:
    """Appends one JSON object per line to `path` (directories are created). Each batch is one
    write in append mode, so concurrent writers in one process do not interleave lines."""

    name = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # the composition root makes one sink per file

    def _append(self, lines: Sequence[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(line + "\n" for line in lines)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(data)

    def send(self, records: Sequence[FindingRecord]) -> DeliveryResult:
        try:
            self._append([_line(r.to_json()) for r in records])
        except Exception as err:
            log.error("could not write %d findings to %s: %s", len(records), self.path, describe_error(err))
            return DeliveryResult(self.name, False, 1, failed=len(records), detail=describe_error(err))
        return DeliveryResult(self.name, True, 1, count=len(records), detail="ok")

    def send_alert(self, alert: Alert) -> DeliveryResult:
        """Writes {"type": "guardrail.alert", "alert": {...}, "card": {...}} (for the demo)."""
        from dataclasses import asdict

        from guardrail.alerts import to_adaptive_card

        try:
            self._append(
                [_line({"type": "guardrail.alert", "alert": asdict(alert), "card": to_adaptive_card(alert)})]
            )
        except Exception as err:
            log.error("could not write an alert to %s: %s", self.path, describe_error(err))
            return DeliveryResult(self.name, False, 1, failed=1, detail=describe_error(err))
        return DeliveryResult(self.name, True, 1, count=1, detail="ok")

    def read(self) -> list[FindingRecord]:
        """The finding rows written so far (alert lines are skipped)."""
        if not self.path.exists():
            return []
        out: list[FindingRecord] = []
        for raw in self.path.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                row = json.loads(raw)
                if row.get("type") != "guardrail.alert":
                    out.append(FindingRecord.from_json(row))
        return out


class LogSink:
    """One INFO line per record on the `guardrail.findings` logger:
    {"type": "guardrail.finding", "record": {...}} (Application Insights traces)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger or findings_log
        self.level = level

    def send(self, records: Sequence[FindingRecord]) -> DeliveryResult:
        for r in records:
            self.logger.log(self.level, _line({"type": "guardrail.finding", "record": r.to_json()}))
        return DeliveryResult(self.name, True, 1, count=len(records), detail="ok")
