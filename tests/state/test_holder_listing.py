"""`list_holders`: the registry a page at a time, in ref order, as holders come and go."""

from __future__ import annotations

from validator.policy.types import Category
from validator.state.store import Store

VETERAN = (Category("veteran"),)


async def _all(store: Store, count: int) -> list[str]:
    refs: list[str] = []
    after: str | None = None
    while page := await store.list_holders(after, count):
        refs += [ref for ref, _ in page]
        after = page[-1][0]
    return refs


async def test_pages_follow_adds_and_removals_between_them(store: Store) -> None:
    refs = [f"{i:032x}" for i in range(0, 400, 2)]  # even numbers
    await store.put_holders([(ref, VETERAN) for ref in refs])  # a bulk import
    assert await _all(store, 7) == refs
    first = await store.list_holders(None, 3)
    await store.put_holders([(f"{1:032x}", VETERAN), (f"{3:032x}", VETERAN)])  # a few
    assert await store.delete_holder(f"{4:032x}")
    assert not await store.delete_holder(f"{5:032x}")
    await store.put_holders([(refs[0], (Category("disabled", 2),))])  # an update only
    rest = await store.list_holders(first[-1][0], 3)
    assert [ref for ref, _ in first] == [f"{i:032x}" for i in (0, 2, 4)]
    assert [ref for ref, _ in rest] == [f"{i:032x}" for i in (6, 8, 10)]
    expected = sorted({*refs, f"{1:032x}", f"{3:032x}"} - {f"{4:032x}"})
    assert await _all(store, 50) == expected
    assert (await store.list_holders(None, 1))[0][1] == (Category("disabled", 2),)
