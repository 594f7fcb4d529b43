"""The engine's per-policy values (guardrail.memo): computed once per object, by identity, and
never served for another object (an equal one, or one that reuses a freed id)."""

from __future__ import annotations

from guardrail.memo import KEPT, PerObject


def test_a_value_is_built_once_per_object_and_only_for_that_object() -> None:
    built: list[object] = []

    def build(obj: object) -> tuple[object, int]:
        built.append(obj)
        return (obj, len(built))

    cache = PerObject(build)
    a, b = [1], [1]  # equal, not the same object
    assert cache(a) == cache(a) == (a, 1)
    assert cache(b)[0] is b
    assert built == [a, b]


def test_past_its_bound_the_cache_starts_again_and_still_answers_right() -> None:
    cache = PerObject(lambda obj: id(obj))
    objects = [object() for _ in range(3 * KEPT)]
    assert [cache(o) for o in objects] == [id(o) for o in objects]
    assert [cache(o) for o in objects] == [id(o) for o in objects]
    assert len(cache._entries) <= KEPT


def test_an_id_reused_by_a_new_object_is_not_served_the_old_value() -> None:
    cache = PerObject(lambda obj: obj["name"])
    first = {"name": "first"}
    assert cache(first) == "first"
    cache._entries[id(first)] = (object(), "stale")  # as if the id now belonged to another object
    assert cache(first) == "first"
