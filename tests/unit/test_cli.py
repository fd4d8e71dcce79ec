"""The `pocketkube` command's process-wide set-up."""

from __future__ import annotations

import resource
import subprocess
import sys


def test_open_files_soft_limit_is_raised_to_the_hard_one():
    # A node with 110 pods holds more descriptors than the common soft limit of 1024.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    out = subprocess.run(
        [sys.executable, "-c", "import resource; from pocketkube.cli import raise_open_files_limit as r; "
                               "print(r(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"],
        preexec_fn=lower, capture_output=True, text=True, check=True).stdout.split()
    want = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    assert out == [str(want), str(want)]
