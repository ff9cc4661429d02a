"""A function's init phase: the imports and set-up its module runs once, before the first invocation.

They make only long-lived objects (modules, classes, clients, settings). CPython's cyclic collector
scans them over and over while they are made, about 40 ms of CPU in a webhook function's cold start
(a tenth of it), and frees almost nothing (~0.2 MB). `init_phase` pauses it for the init and then
freezes what the init made (`gc.freeze`), so that no later collection scans it either; what the init
left as cyclic garbage stays (the ~0.2 MB). This module imports nothing but `gc`: it runs first.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def init_phase() -> Iterator[None]:
    """Run the block (a handler module's imports and set-up) without cyclic garbage collection."""
    was_enabled = gc.isenabled()
    # Garbage made before the init (a test process importing a handler) is not frozen with it.
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
