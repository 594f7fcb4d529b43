"""JSON with line numbers: the value `json.loads` gives, and the line where each object or array
member starts, keyed by its path (a tuple of keys and indexes), so a finding can point at the line of
a resource's `properties` in the file the user wrote. Standard library only: the text is parsed once
by `json.loads` (its errors are the user's), then walked by a small scanner on the same grammar that
only records where each value starts."""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Any, Final

Path = tuple[str | int, ...]

_WS: Final = re.compile(r"[ \t\n\r]*")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Located:
    """A parsed JSON document and the 1-based line where the value at each path starts."""

    value: Any
    lines: dict[Path, int]

    def line(self, path: Path) -> int:
        """The line of the value at `path`, else of its nearest recorded ancestor (1 at worst)."""
        while path:
            found = self.lines.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.lines.get((), 1)


def loads(text: str) -> Located:
    """Parse `text` as `json.loads` does (raising its `JSONDecodeError`), with the lines."""
    value = json.loads(text)
    newlines = [i for i, char in enumerate(text) if char == "\n"]
    lines: dict[Path, int] = {}

    def line_of(offset: int) -> int:
        return bisect.bisect_right(newlines, offset - 1) + 1

    def skip(offset: int) -> int:
        match = _WS.match(text, offset)
        return match.end() if match else offset

    def walk(offset: int, path: Path) -> int:
        """Record the value starting at `offset` (after white space) and return where it ends."""
        offset = skip(offset)
        lines[path] = line_of(offset)
        char = text[offset]
        if char == "{":
            offset = skip(offset + 1)
            if text[offset] == "}":
                return offset + 1
            while True:
                key, offset = _scanstring(text, offset + 1)
                offset = skip(offset) + 1  # the colon
                offset = skip(walk(offset, (*path, key)))
                if text[offset] == "}":
                    return offset + 1
                offset = skip(offset + 1)  # the comma
        if char == "[":
            offset = skip(offset + 1)
            if text[offset] == "]":
                return offset + 1
            index = 0
            while True:
                offset = skip(walk(offset, (*path, index)))
                index += 1
                if text[offset] == "]":
                    return offset + 1
                offset += 1
        if char == '"':
            return int(_scanstring(text, offset + 1)[1])
        for word in ("true", "false", "null", "NaN", "Infinity", "-Infinity"):
            if text.startswith(word, offset):
                return offset + len(word)
        match = _NUMBER.match(text, offset)
        assert match is not None, "json.loads accepted it"
        return match.end()

    walk(0, ())
    return Located(value, lines)
