"""Matching a failed pod against a Job's podFailurePolicy (`pkg/controller/job/pod_failure_policy.go`).

Not every pod failure is the workload's fault: a pod evicted from a draining node (condition
DisruptionTarget) should not count against backoffLimit, while an exit code that means "the
input is bad" should fail the whole Job at once instead of retrying six times. The rules are
tried in order; the first that matches decides: FailJob (with upstream's message), FailIndex,
Ignore (the failure is not counted) or Count (the default behaviour).
"""

from __future__ import annotations

from typing import NamedTuple

FAIL_JOB = "FailJob"
FAIL_INDEX = "FailIndex"
IGNORE = "Ignore"
COUNT = "Count"


class Match(NamedTuple):
    fail_job_message: str | None   # set when a FailJob rule matched
    count_failed: bool             # False when an Ignore rule matched
    action: str | None             # the matching rule's action, None if no rule matched


_NO_MATCH = Match(None, True, None)


def match_pod_failure_policy(policy: dict | None, pod: dict) -> Match:
    if not policy:
        return _NO_MATCH
    status = pod.get("status") or {}
    meta = pod["metadata"]
    for i, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            cs = _matching_container(status, rule["onExitCodes"])
            if cs is None:
                continue
            if action == FAIL_JOB:
                code = cs["state"]["terminated"].get("exitCode", 0)
                return Match(f"Container {cs.get('name')} for pod {meta.get('namespace')}/{meta['name']} failed "
                             f"with exit code {code} matching {action} rule at index {i}", True, action)
        elif rule.get("onPodConditions") is not None:
            cond = _matching_condition(status, rule["onPodConditions"])
            if cond is None:
                continue
            if action == FAIL_JOB:
                return Match(f"Pod {meta.get('namespace')}/{meta['name']} has condition {cond.get('type')} "
                             f"matching {action} rule at index {i}", True, action)
        else:
            continue
        if action == IGNORE:
            return Match(None, False, action)
        if action in (FAIL_INDEX, COUNT):
            return Match(None, True, action)
    return _NO_MATCH


def _matching_container(status: dict, req: dict) -> dict | None:
    """The first terminated container (then init container) with a non-zero exit code matching `req`."""
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or ():
            term = (cs.get("state") or {}).get("terminated")
            if term is None:
                continue   # still terminating: no exit code to match yet
            name = req.get("containerName")
            if name is not None and name != cs.get("name"):
                continue
            code = term.get("exitCode", 0)
            if code != 0 and _operator_matches(code, req):
                return cs
    return None


def _operator_matches(code: int, req: dict) -> bool:
    values = req.get("values") or ()
    op = req.get("operator")
    if op == "In":
        return code in values
    if op == "NotIn":
        return code not in values
    return False


def _matching_condition(status: dict, patterns: list) -> dict | None:
    for cond in status.get("conditions") or ():
        for pat in patterns:
            if cond.get("type") == pat.get("type") and cond.get("status") == (pat.get("status") or "True"):
                return cond
    return None
