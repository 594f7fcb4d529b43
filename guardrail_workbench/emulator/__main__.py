"""`python -m guardrail_workbench.emulator` (same as `guardrail emulator`)."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
