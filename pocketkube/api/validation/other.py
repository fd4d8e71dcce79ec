"""Validation for the small kinds: coordination.k8s.io Lease.

Leases are written every few seconds by every node and controller, so their check is short.
"""

from __future__ import annotations

from pocketkube.api.errors import FieldError, forbidden, invalid
from pocketkube.api.names import name_is_dns_subdomain

from .common import as_int, dict_of
from .meta import validate_object_meta, validate_object_meta_update


def validate_lease(obj: dict, old: dict | None) -> list[FieldError]:
    meta = dict_of(obj.get("metadata"))
    if old is None:
        errs = validate_object_meta(meta, True, name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(meta, dict_of(old.get("metadata")))
    spec = dict_of(obj.get("spec"))
    d = as_int(spec.get("leaseDurationSeconds"))
    if d is not None and d <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", d, "must be greater than 0"))
    t = as_int(spec.get("leaseTransitions"))
    if t is not None and t < 0:
        errs.append(invalid("spec.leaseTransitions", t, "must be greater than or equal to 0"))
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errs.append(
            forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
        )
    return errs
