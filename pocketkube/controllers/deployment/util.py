"""The Deployment controller's vocabulary: annotations, conditions, fenceposts, proportions.

Why it exists: every decision the controller takes (how many pods may surge, which ReplicaSet
is the new one, how a scaling event is split between ReplicaSets, when a rollout is complete or
stuck) is a small pure function in upstream's `pkg/controller/deployment/util`. Keeping them
here, free of I/O, lets the strategy modules read like upstream's and lets tests check the
arithmetic (rounding, leftovers, revision history) without a cluster.

Objects are the plain dicts the API serves. Nothing here mutates an informer's copy: functions
that change an object say so and are only given copies.
"""

from __future__ import annotations

import functools
import math
from typing import Iterable

import orjson

from ...clock import parse_rfc3339

# Labels and annotations, as upstream spells them.
POD_TEMPLATE_HASH = "pod-template-hash"  # apps.DefaultDeploymentUniqueLabelKey
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"  # apps.DeprecatedRollbackTo
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CHANGE_CAUSE = "kubernetes.io/change-cause"

# Never copied from a Deployment to its ReplicaSets (annotationsToSkip).
ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                                 MAX_REPLICAS, ROLLBACK_TO})

MAX_REV_HISTORY_LENGTH_IN_CHARS = 2000
MAX_INT32 = 2**31 - 1

# Condition types and reasons (apps/v1 and deployment_util.go).
AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
REPLICASET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICASET = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MIN_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
ROLLBACK_REVISION_NOT_FOUND = "DeploymentRollbackRevisionNotFound"
ROLLBACK_TEMPLATE_UNCHANGED = "DeploymentRollbackTemplateUnchanged"
ROLLBACK_DONE = "DeploymentRollback"


def copy(obj):
    """A deep copy cheap enough to take on every sync (JSON-shaped data only)."""
    return orjson.loads(orjson.dumps(obj))


# ---- field access ------------------------------------------------------------------------------

def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def annotations(obj: dict) -> dict:
    return meta(obj).get("annotations") or {}


def spec_replicas(obj: dict | None) -> int:
    """*spec.replicas; the API defaults it to 1, so a missing value is only a bare dict's."""
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def status_int(obj: dict | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def generation(obj: dict) -> int:
    return int(meta(obj).get("generation") or 0)


def creation_key(rs: dict) -> tuple:
    """ReplicaSetsByCreationTimestamp: oldest first, name breaks ties."""
    m = meta(rs)
    return (parse_rfc3339(m.get("creationTimestamp")) or 0.0, m.get("name") or "")


# ---- sets of ReplicaSets -----------------------------------------------------------------------

def active(rss: Iterable[dict | None]) -> list[dict]:
    """controller.FilterActiveReplicaSets: those asking for at least one pod."""
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def replica_count(rss: Iterable[dict | None]) -> int:
    return sum(spec_replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[dict | None]) -> int:
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[dict | None]) -> int:
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[dict | None]) -> int:
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def terminating_replica_count(rss: Iterable[dict | None]) -> int | None:
    """GetTerminatingReplicaCountForReplicaSets: None when some ReplicaSet does not report it.

    A ReplicaSet its controller has not seen yet (observedGeneration 0) is skipped.
    """
    total = 0
    for rs in rss:
        if rs is None:
            continue
        st = rs.get("status") or {}
        if not st.get("observedGeneration") and st.get("terminatingReplicas") is None:
            continue
        if st.get("terminatingReplicas") is None:
            return None
        total += int(st["terminatingReplicas"])
    return total


def sort_by_creation(rss: list[dict], newest_first: bool = False) -> list[dict]:
    return sorted(rss, key=creation_key, reverse=newest_first)


def sort_by_size_newer(rss: list[dict]) -> list[dict]:
    """ReplicaSetsBySizeNewer: larger first; among equals the newer first (scaling up)."""
    return sorted(sort_by_creation(rss, newest_first=True), key=spec_replicas, reverse=True)


def sort_by_size_older(rss: list[dict]) -> list[dict]:
    """ReplicaSetsBySizeOlder: larger first; among equals the older first (scaling down)."""
    return sorted(sort_by_creation(rss), key=spec_replicas, reverse=True)


def revision(rs: dict | None) -> int | None:
    """The revision annotation: 0 when absent, None when it is not a number."""
    if rs is None:
        return None
    v = annotations(rs).get(REVISION)
    if v is None:
        return 0
    try:
        return int(v)
    except ValueError:
        return None


def sort_by_revision(rss: list[dict]) -> list[dict]:
    """ReplicaSetsByRevision: by revision; unparsable or equal revisions by creation time."""
    def cmp(a: dict, b: dict) -> int:
        ra, rb = revision(a), revision(b)
        if ra is None or rb is None or ra == rb:
            ka, kb = creation_key(a), creation_key(b)
            return (ka > kb) - (ka < kb)
        return (ra > rb) - (ra < rb)
    return sorted(rss, key=functools.cmp_to_key(cmp))


def max_revision(rss: Iterable[dict | None]) -> int:
    best = 0
    for rs in rss:
        v = revision(rs)
        if v is not None and v > best:
            best = v
    return best


def last_revision(rss: Iterable[dict | None]) -> int:
    """The second highest revision: what `rollbackTo: 0` means."""
    latest = previous = 0
    for rs in rss:
        v = revision(rs)
        if v is None:
            continue
        if v >= latest:
            previous, latest = latest, v
        elif v > previous:
            previous = v
    return previous


# ---- templates ---------------------------------------------------------------------------------

def _prune(v):
    """Semantic equality treats nil and empty maps and lists alike; JSON null is unset."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = _prune(x)
            if x is None or x == {} or x == []:
                continue
            out[k] = x
        return out
    if isinstance(v, list):
        return [_prune(x) for x in v]
    return v


def template_without_hash(template: dict | None) -> dict:
    t = _prune(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels and POD_TEMPLATE_HASH in labels:
        labels = {k: v for k, v in labels.items() if k != POD_TEMPLATE_HASH}
        md = dict(t["metadata"])
        if labels:
            md["labels"] = labels
        else:
            md.pop("labels")
        t = dict(t)
        if md:
            t["metadata"] = md
        else:
            t.pop("metadata")
    return t


def equal_ignore_hash(a: dict | None, b: dict | None) -> bool:
    """EqualIgnoreHash: two pod templates are the same apart from the pod-template-hash label."""
    return template_without_hash(a) == template_without_hash(b)


def find_new_replica_set(d: dict, rss: list[dict]) -> dict | None:
    """The oldest ReplicaSet whose template is the Deployment's (several can exist after a
    template is changed back and forth quickly; the oldest wins, as upstream)."""
    tpl = template_without_hash((d.get("spec") or {}).get("template"))
    for rs in sort_by_creation(rs for rs in rss if rs is not None):
        if template_without_hash((rs.get("spec") or {}).get("template")) == tpl:
            return rs
    return None


def find_old_replica_sets(d: dict, rss: list[dict], new_rs: dict | None) -> tuple[list[dict], list[dict]]:
    """(old ReplicaSets with pods, every old ReplicaSet)."""
    new_uid = meta(new_rs).get("uid") if new_rs is not None else None
    every = [rs for rs in rss if new_uid is None or meta(rs).get("uid") != new_uid]
    return [rs for rs in every if spec_replicas(rs) != 0], every


def find_active_or_latest(new_rs: dict | None, old_rss: list[dict]) -> dict | None:
    """The only active ReplicaSet, or the newest when none is active; None when several are."""
    if new_rs is None and not old_rss:
        return None
    olds = sort_by_creation(old_rss, newest_first=True)
    act = active(olds + [new_rs])
    if not act:
        return new_rs if new_rs is not None else olds[0]
    if len(act) == 1:
        return act[0]
    return None


# ---- rolling-update arithmetic -----------------------------------------------------------------

def scaled_value(v, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: ints as they are, "25%" of total rounded."""
    if v is None:
        v = 0
    if isinstance(v, bool):
        raise ValueError(f"invalid value for IntOrString: {v!r}")
    if isinstance(v, int):
        return v
    s = str(v)
    if not s.endswith("%"):
        try:
            return int(s)
        except ValueError:
            raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage") from None
    pct = int(s[:-1])
    # Exact integer arithmetic equals Go's float64 Ceil/Floor for int32 operands.
    return -((-pct * total) // 100) if round_up else (pct * total) // 100


def resolve_fenceposts(max_surge, max_unavailable, desired: int) -> tuple[int, int]:
    """ResolveFenceposts: surge rounds up, unavailable down; both 0 makes unavailable 1."""
    surge = scaled_value(0 if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def is_rolling_update(d: dict) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") == "RollingUpdate"


def _rolling(d: dict) -> dict:
    return ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def max_unavailable(d: dict) -> int:
    desired = spec_replicas(d)
    if not is_rolling_update(d) or desired == 0:
        return 0
    ru = _rolling(d)
    _, unavailable = resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), desired)
    return min(unavailable, desired)


def max_surge(d: dict) -> int:
    if not is_rolling_update(d):
        return 0
    ru = _rolling(d)
    surge, _ = resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), spec_replicas(d))
    return surge


def new_rs_new_replicas(d: dict, all_rss: list[dict | None], new_rs: dict) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be now."""
    strategy = ((d.get("spec") or {}).get("strategy") or {}).get("type")
    desired = spec_replicas(d)
    if strategy == "RollingUpdate":
        surge = scaled_value(_rolling(d).get("maxSurge") or 0, desired, True)
        current = replica_count(all_rss)
        max_total = desired + surge
        if current >= max_total:
            return spec_replicas(new_rs)
        up = min(max_total - current, desired - spec_replicas(new_rs))
        return spec_replicas(new_rs) + up
    if strategy == "Recreate":
        return desired
    raise ValueError(f"deployment type {strategy} isn't supported")


def is_saturated(d: dict, rs: dict | None) -> bool:
    """The new ReplicaSet runs every desired pod and knows the Deployment wants that many."""
    if rs is None:
        return False
    try:
        desired = int(annotations(rs).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    want = spec_replicas(d)
    return spec_replicas(rs) == want and desired == want and status_int(rs, "availableReplicas") == want


def _int_annotation(rs: dict, key: str) -> int | None:
    v = annotations(rs).get(key)
    if v is None:
        return None
    try:
        n = int(v)
    except ValueError:
        return None
    return n if -2**31 <= n < 2**31 else None


def desired_replicas_annotation(rs: dict) -> int | None:
    return _int_annotation(rs, DESIRED_REPLICAS)


def go_round(x: float) -> int:
    """math.Round: halves away from zero (Python's round() goes to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def replica_set_fraction(rs: dict, d: dict) -> int:
    """getReplicaSetFraction: this ReplicaSet's share of a scaling event (negative to shrink)."""
    if spec_replicas(d) == 0:
        return -spec_replicas(rs)
    d_max = spec_replicas(d) + max_surge(d)
    before = _int_annotation(rs, MAX_REPLICAS)
    if not before:
        # No (or a zero) annotation: the Deployment's size before the event is the best guess.
        before = status_int(d, "replicas")
        if before == 0:
            return 0
    return go_round(spec_replicas(rs) * d_max / before) - spec_replicas(rs)


def proportion(rs: dict | None, d: dict, to_add: int, added: int) -> int:
    """GetProportion: the share, bounded by what is still left to add or remove."""
    if rs is None or spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# ---- annotations -------------------------------------------------------------------------------

def set_replicas_annotations(rs: dict, desired: int, max_replicas: int) -> bool:
    """Record the Deployment's size (and size with surge) on a ReplicaSet copy."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: dict, desired: int, max_replicas: int) -> bool:
    ann = annotations(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def copy_deployment_annotations(d: dict, rs: dict) -> bool:
    """Copy the Deployment's own annotations (change-cause, ...) onto a ReplicaSet copy."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for k, v in annotations(d).items():
        if k in ANNOTATIONS_TO_SKIP or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_new_replica_set_annotations(d: dict, rs: dict, new_revision: str, exists: bool,
                                    limit: int = MAX_REV_HISTORY_LENGTH_IN_CHARS) -> bool:
    """SetNewReplicaSetAnnotations on a ReplicaSet copy; True when something changed.

    The revision only ever grows. A ReplicaSet that gets a new revision (a rollback to it)
    remembers its former revisions in revision-history, trimmed to `limit` characters.
    """
    changed = copy_deployment_annotations(d, rs)
    ann = rs["metadata"]["annotations"]
    old = ann.get(REVISION)
    had = old is not None
    try:
        old_int = int(old) if old not in (None, "") else 0
    except ValueError:
        return False
    try:
        new_int = int(new_revision)
    except ValueError:
        return False
    if old_int < new_int:
        ann[REVISION] = new_revision
        changed = True
    if had and old_int < new_int:
        history = ann.get(REVISION_HISTORY, "")
        olds = history.split(",")
        if not olds[0]:
            ann[REVISION_HISTORY] = old
        else:
            total = len(history) + len(old) + 1
            start = 0
            while total > limit and start < len(olds):
                total -= len(olds[start]) + 1
                start += 1
            if total <= limit:
                ann[REVISION_HISTORY] = ",".join(olds[start:] + [old])
    if not exists and set_replicas_annotations(rs, spec_replicas(d), spec_replicas(d) + max_surge(d)):
        changed = True
    return changed


def set_deployment_revision(d: dict, rev: str) -> bool:
    ann = d.setdefault("metadata", {}).setdefault("annotations", {})
    if ann.get(REVISION) != rev:
        ann[REVISION] = rev
        return True
    return False


def set_deployment_annotations_to(d: dict, rs: dict) -> None:
    """On rollback: the Deployment takes the target ReplicaSet's annotations (change-cause...)."""
    m = d.setdefault("metadata", {})
    kept = {k: v for k, v in (m.get("annotations") or {}).items() if k in ANNOTATIONS_TO_SKIP}
    for k, v in annotations(rs).items():
        if k not in ANNOTATIONS_TO_SKIP:
            kept[k] = v
    m["annotations"] = kept


# ---- conditions --------------------------------------------------------------------------------

def get_condition(status: dict | None, ctype: str) -> dict | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: str) -> dict:
    return {"type": ctype, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """SetDeploymentCondition: same status and reason is no change; the new one goes last."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = dict(cond, lastTransitionTime=current.get("lastTransitionTime"))
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict, ctype: str) -> None:
    if status.get("conditions"):
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != ctype]


def has_progress_deadline(d: dict) -> bool:
    v = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return v is not None and v != MAX_INT32


def has_revision_history_limit(d: dict) -> bool:
    v = (d.get("spec") or {}).get("revisionHistoryLimit")
    return v is not None and v != MAX_INT32


def deployment_complete(d: dict, status: dict) -> bool:
    """All desired replicas updated and available, none of the old left, generation observed."""
    want = spec_replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= generation(d))


def deployment_progressing(d: dict, new: dict) -> bool:
    """More updated, ready or available pods, or fewer old ones, than the stored status says."""
    old = d.get("status") or {}

    def g(st: dict, f: str) -> int:
        return int(st.get(f) or 0)
    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas") or new_old < old_old
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: dict, new: dict, now: float) -> bool:
    """No progress reported for progressDeadlineSeconds (a completed rollout never times out)."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(new, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_rfc3339(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + int(d["spec"]["progressDeadlineSeconds"]) < now


def replica_set_to_deployment_condition(c: dict) -> dict:
    return {"type": c.get("type"), "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
            "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason"),
            "message": c.get("message")}


# ---- status comparison -------------------------------------------------------------------------

# DeploymentStatus fields Go omits when zero (terminatingReplicas is a pointer: 0 is shown).
_OMIT_ZERO = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
              "unavailableReplicas")


def normalized_status(status: dict | None) -> dict:
    """A status as Go would serialise it, so equal statuses compare equal as dicts."""
    out = {}
    for k, v in (status or {}).items():
        if v is None or (k in _OMIT_ZERO and v == 0) or (k == "conditions" and not v):
            continue
        out[k] = v
    return out
