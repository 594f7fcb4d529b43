"""Event text made safe for one log line (pure, standard library only: the alert composer and
the event parser both use it, and neither may pull an Azure SDK in at import)."""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Final

_UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


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
