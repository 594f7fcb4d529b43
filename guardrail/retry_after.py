"""`Retry-After` as HTTP defines it (RFC 9110 §10.2.3): delta-seconds or an HTTP-date; and the
millisecond headers Azure services send beside it (`retry-after-ms`, `x-ms-retry-after-ms`).

Pure and standard library only: the sinks' retry policy uses it (and the gateway can)."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Mapping
from typing import Any, Final

_MS_HEADERS: Final = ("retry-after-ms", "x-ms-retry-after-ms")


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait: `"120"` (also `"1.5"`) or an HTTP-date such as
    `"Wed, 21 Oct 2026 07:28:00 GMT"` (IMF-fixdate, and the obsolete RFC 850 and asctime forms),
    counted from `now` (default: the current UTC time). A date in the past is 0; a value that is
    neither (negative, empty, garbage) is None."""
    if value is None or not value.strip():
        return None
    seconds = _number(value)
    return seconds if seconds is not None else _seconds_until(value.strip(), now)


def _number(text: str) -> float | None:
    """A finite, non-negative number, else None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _seconds_until(text: str, now: dt.datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" and asctime: HTTP-dates are always UTC
        when = when.replace(tzinfo=dt.UTC)
    reference = now if now is not None else dt.datetime.now(dt.UTC)
    return max(0.0, (when - reference).total_seconds())


def retry_after_from_headers(
    headers: Mapping[str, Any] | None, *, now: dt.datetime | None = None
) -> float | None:
    """Seconds to wait from response headers (any case): the millisecond headers first, then
    `Retry-After`; None when none of them holds a usable value."""
    if not headers:
        return None
    lower = {str(key).lower(): value for key, value in headers.items()}
    for name in _MS_HEADERS:
        text = _text(lower.get(name))
        milliseconds = _number(text) if text is not None else None
        if milliseconds is not None:
            return milliseconds / 1000.0
    return parse_retry_after(_text(lower.get("retry-after")), now=now)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
