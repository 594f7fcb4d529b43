"""Shared test set-up: where the Azure contract samples live.

CI runs a fresh clone with `shared/` beside it, so the contracts are found relative to the
repository (`<repo>/../shared/contracts`), never at an absolute path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO.parent / "shared" / "contracts"


def load_contract(relative: str) -> Any:
    """A contract sample, parsed; fails loudly when shared/ is missing."""
    path = CONTRACTS / relative
    if not path.exists():
        raise FileNotFoundError(f"contract sample {path} is missing: shared/ must sit beside the repository")
    return json.loads(path.read_text(encoding="utf-8"))
