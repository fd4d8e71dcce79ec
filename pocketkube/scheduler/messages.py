"""The texts users read when a pod cannot be scheduled, worded exactly as kube-scheduler's.

`FitError.Error()` upstream: ``0/N nodes are available:`` then either the PreFilter message,
or a histogram of the per-node reasons (``"<count> <reason>"``, sorted as strings, joined by
", "), then a full stop, then the PostFilter (preemption) message, itself shaped the same way:

    0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node
    affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found for
    incoming pod, 2 Preemption is not helpful for scheduling.

Events carry the message cut to 1024 characters (the Event note limit), the PodScheduled
condition carries it whole.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

NO_NODES = "no nodes available to schedule pods"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."
NOTE_LENGTH_LIMIT = 1024


def histogram(num_all: int, explicit: Iterable[tuple[str, ...]], absent: tuple[str, ...], absent_count: int) -> str:
    """The sorted "<count> <reason>" list for the nodes' statuses."""
    counts: Counter = Counter()
    for reasons in explicit:
        for r in reasons:
            counts[r] += 1
    if absent_count > 0:
        for r in absent:
            counts[r] += absent_count
    return ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))


def fit_error(num_all: int, prefilter_msg: str = "", reasons: str = "", postfilter_msg: str = "") -> str:
    msg = f"0/{num_all} nodes are available:"
    if prefilter_msg:
        msg += f" {prefilter_msg}."
    elif reasons:
        msg += f" {reasons}."
    if postfilter_msg:
        msg += f" {postfilter_msg}"
    return msg


def preemption(num_all: int, explicit: Iterable[tuple[str, ...]], absent_count: int) -> str:
    """DefaultPreemption's PostFilter message when no candidate node exists."""
    hist = histogram(num_all, explicit, (NOT_HELPFUL,), absent_count)
    return "preemption: " + fit_error(num_all, reasons=hist)


def truncate(message: str) -> str:
    """truncateMessage: the Event note limit."""
    if len(message) <= NOTE_LENGTH_LIMIT:
        return message
    suffix = " ..."
    return message[:NOTE_LENGTH_LIMIT - len(suffix)] + suffix
