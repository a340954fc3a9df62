"""Named points where a run can be killed on purpose, to prove that it recovers.

``DAC7_FAULT=<point>`` makes the process die at that point as a ``kill -9`` would (``os._exit``:
no ``finally``, no commit, no cleanup). The tests kill runs at every point and then check that
a rerun leaves the output directory holding exactly what the ledger says is published. Unset,
a point costs one dictionary lookup.
"""

from __future__ import annotations

import os

#: every point, in the order a run reaches them
POINTS = (
    "publish.after_rename",  # a file renamed into the output, its ledger transaction not committed
    "publish.after_commit",  # a file published and recorded, the next file of the authority not yet
    "publish.between_authorities",  # one authority published, the next not yet
    "finalize.before_manifest",  # every file published, the reports written, no manifest yet
)


def fault_point(name: str) -> None:
    if os.environ.get("DAC7_FAULT") == name:
        os._exit(137)  # what a SIGKILL's exit status says
