"""How ARM compares names and IDs, for the emulator's own keys: ordinal, ignore case (.NET's
OrdinalIgnoreCase), which upper-cases each UTF-16 code unit by its one-to-one (simple) mapping,
leaving U+0131 (dotless i) and U+017F (long s) as they are (dotnet/runtime, pal_casing.c
InitOrdinalCasingPage). So U+212A KELVIN SIGN is not `k` here, though `str.lower()` makes it one.

The emulator's own implementation, written apart from the guardrail's (the emulator never imports
`guardrail`, so that the two cannot agree by construction)."""

from __future__ import annotations

from typing import Final

# UnicodeData.txt's simple upper-case mappings where Python's full `str.upper` gives two characters
# but the simple mapping exists: the Greek letters with ypogegrammeni take their prosgegrammeni form.
_SIMPLE_UPPER: Final = {
    **{code: code + 8 for start in (0x1F80, 0x1F90, 0x1FA0) for code in range(start, start + 8)},
    0x1FB3: 0x1FBC,
    0x1FC3: 0x1FCC,
    0x1FF3: 0x1FFC,
}
_KEPT: Final = frozenset({0x0131, 0x017F})
_TO_ASCII_LOWER: Final = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def fold(text: str) -> str:
    """`text` as a key that two strings share exactly when ARM takes them for the same name: each
    code unit upper-cased as ordinal ignore-case does, then A-Z written a-z again (so an ASCII name
    keys as its lower case)."""
    if text.isascii():
        return text.lower()
    units = []
    for ch in text:
        code = ord(ch)
        if code > 0xFFFF or code in _KEPT:  # a surrogate pair has no case, code unit by code unit
            units.append(ch)
        elif code in _SIMPLE_UPPER:
            units.append(chr(_SIMPLE_UPPER[code]))
        else:
            upper = ch.upper()
            units.append(upper if len(upper) == 1 else ch)
    return "".join(units).translate(_TO_ASCII_LOWER)
