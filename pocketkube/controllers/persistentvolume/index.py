"""Which volume a claim gets: kube-controller-manager's volume index and matching rules.

Why it exists: binding must pick the same volume Kubernetes would, because users size their
volumes and claims for that behaviour. Upstream (`persistentVolumeOrderedIndex.findByClaim` and
`FindMatchingVolume` in component-helpers/storage/volume) does, and so does this module:

* volumes are grouped by their access modes; the claim looks first among volumes whose modes are
  the smallest superset of its own (an RWO claim prefers an RWO volume to an RWO+RWX one);
* within a group: a volume pre-bound to this claim (claimRef with the claim's name and, if set,
  uid) wins at once; otherwise only Available volumes without a claimRef, of the claim's class,
  whose labels match the claim's selector, of the same volumeMode, not being deleted and at least
  as large as the request are candidates, and the smallest one wins;
* for a WaitForFirstConsumer claim the controller binds only pre-bound volumes: the scheduler
  chooses the others once it knows the node (it pre-binds the chosen volume's claimRef).

The scheduler's own copy of these rules (`scheduler/volumes.py`) is the node-aware half; the
class accessors and annotation names are shared from there.
"""

from __future__ import annotations

from ...api.selectors import SelectorError, selector_from_dict
from ...scheduler.resources import int_value
from ...scheduler.volumes import claim_class, volume_class

__all__ = ["SelectorError", "claim_class", "volume_class", "storage_request", "storage_capacity", "is_bound_to_claim",
           "find_best_match", "check_volume_satisfies_claim", "access_modes_contain"]


def storage_request(pvc: dict) -> int:
    q = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return int_value(str(q)) if q is not None else 0


def storage_capacity(pv: dict) -> int:
    q = ((pv.get("spec") or {}).get("capacity") or {}).get("storage")
    return int_value(str(q)) if q is not None else 0


def is_bound_to_claim(pv: dict, pvc: dict) -> bool:
    """IsVolumeBoundToClaim: the claimRef names the claim, and its uid (if any) is the claim's."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    meta = pvc.get("metadata") or {}
    if ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def access_modes_contain(have: list | None, want: list | None) -> bool:
    return set(want or ()) <= set(have or ())


def _mode_mismatch(pvc: dict, pv: dict) -> bool:
    return ((pvc.get("spec") or {}).get("volumeMode") or "Filesystem") != \
        ((pv.get("spec") or {}).get("volumeMode") or "Filesystem")


def _selector(pvc: dict):
    sel = (pvc.get("spec") or {}).get("selector")
    if not sel:
        return None
    return selector_from_dict(sel)


def _match_in(pvc: dict, volumes: list[dict], delay_binding: bool) -> dict | None:
    """FindMatchingVolume without a node (the controller's path)."""
    want = storage_request(pvc)
    cls = claim_class(pvc)
    selector = _selector(pvc)
    best, best_size = None, 0
    for pv in volumes:
        size = storage_capacity(pv)
        if size < want or _mode_mismatch(pvc, pv) or (pv.get("metadata") or {}).get("deletionTimestamp"):
            continue
        if is_bound_to_claim(pv, pvc):
            return pv
        if delay_binding:
            continue  # the scheduler binds these once it has chosen a node
        if (pv.get("status") or {}).get("phase") != "Available" or (pv.get("spec") or {}).get("claimRef"):
            continue
        if selector is not None and not selector.matches((pv.get("metadata") or {}).get("labels") or {}):
            continue
        if volume_class(pv) != cls:
            continue
        if best is None or size < best_size:
            best, best_size = pv, size
    return best


def find_best_match(pvc: dict, volumes: list[dict], delay_binding: bool) -> dict | None:
    """findBestMatchForClaim: the volume for an unbound claim, or None.

    Raises SelectorError for a claim whose selector cannot be parsed (the sync reports it).
    """
    want = set((pvc.get("spec") or {}).get("accessModes") or ())
    groups: dict[frozenset, list[dict]] = {}
    for pv in volumes:
        modes = frozenset((pv.get("spec") or {}).get("accessModes") or ())
        if want <= modes:
            groups.setdefault(modes, []).append(pv)
    # allPossibleMatchingAccessModes: the smallest supersets first.
    for modes in sorted(groups, key=lambda m: (len(m), sorted(m))):
        found = _match_in(pvc, groups[modes], delay_binding)
        if found is not None:
            return found
    return None


def check_volume_satisfies_claim(pv: dict, pvc: dict) -> str | None:
    """checkVolumeSatisfyClaim: why a claim cannot have the volume it names, None if it can."""
    if (pv.get("metadata") or {}).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{pv["metadata"]["name"]}"'
    if storage_capacity(pv) < storage_request(pvc):
        return "requested PV is too small"
    if volume_class(pv) != claim_class(pvc):
        return "storageClassName does not match"
    if _mode_mismatch(pvc, pv):
        return "incompatible volumeMode"
    if not access_modes_contain((pv.get("spec") or {}).get("accessModes"),
                                (pvc.get("spec") or {}).get("accessModes")):
        return "incompatible accessMode"
    return None

