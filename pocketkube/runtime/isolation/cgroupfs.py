"""Making cgroups from a list of steps, apart from the code that decides them (../cgroups.py).

The steps run in the spawn helper (or, when it forks in Python, in its child) just before
the child joins the cgroups, so the agent's event loop never waits on cgroupfs. This module
is the helper's only view of cgroups and imports nothing but `os`: everything the helper
imports makes each of its forks dearer.
"""

from __future__ import annotations

import os


def write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def apply_steps(steps: list[list]) -> None:
    """Make cgroups as `Cgroups.plan` says: "mkdir" (its parents too, should the runtime's
    base have been removed meanwhile), "write", "try-write" (ignoring errors) and
    "write-if-exists" (a knob the kernel may not have)."""
    for kind, path, *value in steps:
        if kind == "mkdir":
            os.makedirs(path)
            continue
        try:
            write(path, value[0])
        except FileNotFoundError:
            if kind == "write":
                raise
        except OSError:
            if kind != "try-write":
                raise
