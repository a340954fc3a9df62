"""Python's cyclic garbage collector paused around a stage's bulk work, and resumed as it was.

The rules stage and the audit's record checks make a few million small objects (blocks,
decisions, the rows buffered for the Parquet writers, the Arrow rows made into dicts) and keep
tens of thousands of them alive at a time. The collector, started every few hundred new
containers, promotes them and walks them again and again (its oldest generation every object of
the process): about a fifth of the rules stage's CPU, and half of the time of turning the record
checks' Arrow rows into Python ones, measured at 30,000 sellers. None of these objects is part of
a reference cycle (frozen records, tuples, lists, dicts and strings), so reference counting frees
each as before and the collector has nothing to find; the output does not depend on it
(``tests/unit/test_rules_stage_gc.py`` finds no cycle left by the stage)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off inside, and afterwards as it was before (also when the block fails; a
    collector already off stays off). It is process-wide: a thread may pause it only inside a
    pause that outlives the thread (the rules stage's jobs in its own process, inside the
    stage's pause), never beside another thread's, whose end would turn it on under the other."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
