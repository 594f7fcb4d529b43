"""Values the engine derives from a policy (and the like) once, not once per account.

Pure and stdlib only. The object a value is derived from is immutable for its lifetime (a frozen
`Policy`, the registry's severities), so a value never goes stale; entries are keyed by the
object's identity and hold the object itself, so an id is never reused while its entry lives. A
few objects at most are kept (one policy per worker in practice; tests make more)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

_V = TypeVar("_V")

#: Entries kept before the cache starts again (policies are few: one per worker, more in tests).
KEPT: Final = 16


class PerObject(Generic[_V]):
    """`build(obj)`, computed once per object (by identity). On the engine's hot path: a lookup is
    one dict get and one identity test."""

    __slots__ = ("_build", "_entries")

    def __init__(self, build: Callable[[Any], _V]) -> None:
        self._build = build
        self._entries: dict[int, tuple[Any, _V]] = {}

    def __call__(self, obj: Any) -> _V:
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0] is obj:
            return entry[1]
        value = self._build(obj)
        if len(self._entries) >= KEPT:
            self._entries.clear()
        self._entries[id(obj)] = (obj, value)
        return value
