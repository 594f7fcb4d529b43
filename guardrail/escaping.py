"""Event text made safe for one log line (pure, standard library only: the alert composer and
the event parser both use it, and neither may pull an Azure SDK in at import)."""

from __future__ import annotations

import unicodedata
from typing import Final

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
