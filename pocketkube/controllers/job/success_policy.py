"""An Indexed Job's successPolicy (`pkg/controller/job/success_policy.go`).

Some Indexed Jobs are done before every index succeeds: a leader index alone, or any N of them.
Each rule names required indexes (`succeededIndexes`, "0,2-4"), a count (`succeededCount`),
or both; the first rule the succeeded indexes satisfy ends the Job with SuccessCriteriaMet,
reason SuccessPolicy and the message "Matched rules at index <i>".
"""

from __future__ import annotations

from .indexed_job_utils import Intervals, parse_intervals, total

REASON = "SuccessPolicy"


def match_success_policy(policy: dict | None, completions: int, succeeded: Intervals) -> str | None:
    """The condition message if a rule is met, else None."""
    if not policy or not succeeded:
        return None
    for i, rule in enumerate(policy.get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_intervals(rule["succeededIndexes"], completions)
            if required and _indexes_rule_met(required, succeeded, count):
                return f"Matched rules at index {i}"
        elif count is not None and total(succeeded) >= count:
            return f"Matched rules at index {i}"
    return None


def _indexes_rule_met(required: Intervals, succeeded: Intervals, count: int | None) -> bool:
    """All required indexes succeeded, or at least `count` of them did."""
    contains = 0
    r = s = 0
    while r < len(required) and s < len(succeeded):
        overlap = min(required[r][1], succeeded[s][1]) - max(required[r][0], succeeded[s][0]) + 1
        if overlap > 0:
            contains += overlap
        if succeeded[s][1] < required[r][1]:
            s += 1
        elif succeeded[s][1] > required[r][1]:
            r += 1
        else:
            s += 1
            r += 1
    return contains == total(required) or (count is not None and contains >= count)
