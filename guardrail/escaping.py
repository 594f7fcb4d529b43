"""Input made safe for one log line or message (pure, standard library only: the alert composer,
the event parser, the gateway, the policy loader and the sweep all use it, and none may pull an
Azure SDK in at import).

`shown` is the one way input (an event's text, a name from an ARM body, a queue message, a policy
value) enters an error message: quoted, escaped, and cut to a bounded length. Every log line the
guardrail writes goes through `log_safe` as well: its loggers come from `logger`, whose filter
passes each argument of a record (and a record's text when it has none) through it, so input that
reaches a log call some other way still cannot start a line of its own."""

from __future__ import annotations

import json
import logging
import reprlib
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

_UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})
MAX_SHOWN: Final = 200  # characters of one input value in a log line or message


def _brief() -> reprlib.Repr:
    brief = reprlib.Repr()
    brief.maxlevel = 3
    brief.maxlist = brief.maxtuple = brief.maxdict = brief.maxset = brief.maxfrozenset = 8
    brief.maxstring = brief.maxother = brief.maxlong = MAX_SHOWN
    return brief


_BRIEF: Final = _brief()


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """`value` for a log line or a message: a string as its `repr` (quoted; control, format and
    separator characters escaped, so it can never start a line of its own), anything else as a
    `reprlib` repr (bounded however deep or large the value, even one built from YAML aliases),
    cut to `limit` characters with the length it had, so megabytes of input are never echoed."""
    if isinstance(value, str):
        text = value[:limit]
        cut = len(value) > limit
        size = len(value)
    else:
        try:
            text = _BRIEF.repr(value)
        except ValueError:  # an integer past Python's digit limit for str()
            text = f"<{type(value).__name__} too large to show>"
        cut = len(text) > limit
        text, size = text[:limit], None
    out = escape_control(repr(text) if isinstance(value, str) else text)
    if not cut:
        return out
    return f"{out}... ({size} characters)" if size is not None else f"{out}..."


def escape_control(text: str) -> str:
    """`text` with control, format and line/paragraph separator characters written as escapes
    (`\\n`, `\\x1b`, `\\u2028`), so that event text in a log line can never start a new
    line or rewrite the terminal."""
    if not has_control(text):
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def has_control(text: str) -> bool:
    # Every character of the unsafe categories is one `str.isprintable` refuses (it refuses the
    # categories C* and Z* but the space), so printable text is answered in C, without a call
    # per character (a finding's JSON line: ~120 us otherwise).
    if text.isprintable():
        return False
    return any(unicodedata.category(ch) in _UNSAFE_CATEGORIES for ch in text)


def json_line(obj: Any) -> str:
    """`obj` as one line of JSON that stays one line everywhere: json.dumps escapes only U+0000 to
    U+001F, so the other control, format and separator characters (DEL, C1, U+2028, U+2029, bidi
    overrides; `str.splitlines` and log viewers break lines at some of them) become `\\uXXXX`
    escapes too. They can only occur inside JSON strings, so the line is the same JSON value."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
    if not has_control(text):
        return text
    return "".join(_json_escape(ch) if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a UTF-16 surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


MAX_LOGGED: Final = 4000  # characters of one log argument


def log_safe(value: object) -> object:
    """A log record's argument made safe: numbers and None as they are (for `%d` and `%s`), anything
    else its text with control, format and separator characters escaped, cut to MAX_LOGGED."""
    if value is None or isinstance(value, int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_LOGGED:
        text = f"{text[:MAX_LOGGED]}... ({len(text)} characters)"
    return escape_control(text)


class _EscapeInput(logging.Filter):
    """Passes a record's arguments (or, without any, its text) through `log_safe`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {key: log_safe(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(log_safe(value) for value in record.args)
        elif isinstance(record.msg, str) and has_control(record.msg):
            record.msg = escape_control(record.msg)
        return True


_ESCAPE_INPUT: Final = _EscapeInput()


def logger(name: str) -> logging.Logger:
    """The logger `name` (`guardrail` or one below it), with the filter that escapes input."""
    found = logging.getLogger(name)
    if _ESCAPE_INPUT not in found.filters:
        found.addFilter(_ESCAPE_INPUT)
    return found
