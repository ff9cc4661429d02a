"""A handler module's init runs without cyclic garbage collection, and what it made is frozen after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from airudder_ingest.base.init_phase import init_phase


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # this test process keeps collecting what the blocks below made
    gc.enable()


def test_no_collection_during_the_init_and_its_objects_frozen_after() -> None:
    gc.enable()
    with init_phase():
        assert not gc.isenabled()
        made = [[n] for n in range(1_000)]
    after = [0]
    assert gc.isenabled()
    # Frozen: in no generation any later collection scans; what is made after the init is.
    scanned = {id(o) for o in gc.get_objects()}
    assert not any(id(item) in scanned for item in made)
    assert id(after) in scanned


def test_a_failing_init_leaves_collection_as_it_was() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), init_phase():
        raise RuntimeError("init failed")
    assert gc.isenabled()
    gc.disable()
    with init_phase():
        pass
    assert not gc.isenabled()  # off before: still off (the caller's choice)
