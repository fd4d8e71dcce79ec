"""Indexed Jobs: completion indexes, their compressed form, and index-aware pods
(`pkg/controller/job/indexed_job_utils.go`).

In an Indexed Job every pod works on one index in [0, completions). The pod carries the index
in the annotation and label `batch.kubernetes.io/job-completion-index`, in the environment
variable JOB_COMPLETION_INDEX (read from that label through the downward API), in its name
(`<job>-<index>-<5 chars>`) and its hostname (`<job>-<index>`). The Job reports the indexes that
succeeded (and, with backoffLimitPerIndex, failed) as ordered intervals written like
"1,3-5,7", which stays small however many completions there are.
"""

from __future__ import annotations

import logging

log = logging.getLogger("pocketkube.controllers.job")

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
UNKNOWN = -1
# names.SimpleNameGenerator: a generated name is at most 63 characters, 5 of them random.
MAX_GENERATED_NAME_LENGTH = 58

Intervals = list[tuple[int, int]]   # ordered, disjoint, non-adjacent [first, last] pairs


def is_indexed(job: dict) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def has_backoff_limit_per_index(job: dict) -> bool:
    return (job.get("spec") or {}).get("backoffLimitPerIndex") is not None


def completion_index(pod: dict) -> int:
    """The pod's index from its annotation, or UNKNOWN if absent or malformed."""
    v = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX)
    if v is None or not v.isdigit():
        return UNKNOWN
    return int(v)


def with_indexes(intervals: Intervals, indexes) -> Intervals:
    """`intervals` plus each of the (sorted) `indexes`."""
    return merge(intervals, [(i, i) for i in indexes])


def merge(a: Intervals, b: Intervals) -> Intervals:
    out: list[list[int]] = []
    i = j = 0

    def put(iv: tuple[int, int]) -> None:
        if not out or iv[0] > out[-1][1] + 1:
            out.append([iv[0], iv[1]])
        elif out[-1][1] < iv[1]:
            out[-1][1] = iv[1]
    while i < len(a) and j < len(b):
        if a[i][0] < b[j][0]:
            put(a[i])
            i += 1
        else:
            put(b[j])
            j += 1
    for iv in a[i:]:
        put(iv)
    for iv in b[j:]:
        put(iv)
    return [(f, last) for f, last in out]


def total(intervals: Intervals | None) -> int:
    return sum(last - first + 1 for first, last in intervals or ())


def has(intervals: Intervals | None, ix: int) -> bool:
    if not intervals:
        return False
    lo, hi = 0, len(intervals)
    while hi > lo:
        mid = (lo + hi) // 2
        if intervals[mid][1] >= ix:
            hi = mid
        else:
            lo = mid + 1
    return hi < len(intervals) and intervals[hi][0] <= ix


def format_intervals(intervals: Intervals | None) -> str:
    parts = []
    for first, last in intervals or ():
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
    return ",".join(parts)


def parse_intervals(text: str | None, completions: int) -> Intervals:
    """Read "1,3-5" back, dropping what lies at or beyond `completions` and corrupt parts."""
    out: list[list[int]] = []
    for part in (text or "").split(","):
        if not part:
            continue
        bounds = part.split("-")
        try:
            first = int(bounds[0])
            last = int(bounds[1]) if len(bounds) > 1 else first
        except ValueError:
            log.info("corrupted indexes interval %r, ignoring", part)
            continue
        if first >= completions:
            break
        last = min(last, completions - 1)
        if out and out[-1][1] == first - 1:
            out[-1][1] = last
        else:
            out.append([first, last])
    return [(f, last) for f, last in out]


def indexes_of(pods: list[dict]) -> set[int]:
    return {ix for ix in map(completion_index, pods) if ix != UNKNOWN}


def first_pending_indexes(non_pending: Intervals, count: int, completions: int) -> list[int]:
    """The `count` lowest indexes below `completions` that are not in `non_pending`."""
    result: list[int] = []
    candidate = 0
    for first, last in non_pending:
        while candidate < completions and len(result) < count and candidate < first:
            result.append(candidate)
            candidate += 1
        candidate = max(candidate, last + 1)
    while candidate < completions and len(result) < count:
        result.append(candidate)
        candidate += 1
    return result


def duplicated_index_pods(pods: list[dict], completions: int, rank) -> tuple[list[dict], list[dict]]:
    """Split active pods into those to remove (no index, index out of range, or all but the
    best-ranked pod of a repeated index) and those to keep. `rank` sorts pods, best last."""
    rm: list[dict] = []
    keep: list[dict] = []
    by_index: dict[int, list[dict]] = {}
    for p in pods:
        ix = completion_index(p)
        if ix == UNKNOWN or ix >= completions:
            rm.append(p)
        else:
            by_index.setdefault(ix, []).append(p)
    for ix in sorted(by_index):
        group = by_index[ix]
        if len(group) > 1:
            group = rank(group)
            rm.extend(group[:-1])
        keep.append(group[-1])
    return rm, keep


def generate_name_with_index(job_name: str, index: int) -> str:
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATED_NAME_LENGTH:
        prefix = prefix[:MAX_GENERATED_NAME_LENGTH - len(suffix)] + suffix
    return prefix


def add_completion_index_env(spec: dict) -> None:
    """JOB_COMPLETION_INDEX in every (init) container, from the pod's index label."""
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            env = c.setdefault("env", [])
            if any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                continue
            env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
                "apiVersion": "v1", "fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}}})


def failure_count(pod: dict, annotation: str = INDEX_FAILURE_COUNT) -> int:
    v = ((pod.get("metadata") or {}).get("annotations") or {}).get(annotation)
    if v is None:
        return 0
    try:
        n = int(v)
    except ValueError:
        return 0
    return n if 0 <= n <= 2**31 - 1 else 0


def absolute_failure_count(pod: dict) -> int:
    return failure_count(pod) + failure_count(pod, INDEX_IGNORED_FAILURE_COUNT)
