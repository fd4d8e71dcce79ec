"""The pod-template-hash: the suffix of a Deployment's ReplicaSet names (`nginx-7c5ddbdf54`).

Why it exists: a Deployment names each ReplicaSet after its pod template, so the same template
always maps to the same name (creating it twice is idempotent) and every pod carries the hash
as a label that keeps ReplicaSets of one Deployment from selecting each other's pods. The
DaemonSet controller names its ControllerRevisions (and labels their pods) with the same hash.

Upstream (`controller.ComputeHash`) feeds an FNV-32a hash with the Go struct printed by
go-spew (`dump.ForHash`, formerly `hashutil.DeepHashObject`), then the collision count as 8
little-endian bytes, and spells the decimal value of the hash with `rand.SafeEncodeString`'s
alphabet of consonants and digits that cannot form words. gostruct.py prints the template as
spew does, so a manifest gets the ReplicaSet and pod names it gets on Kubernetes 1.37. For
the rare template gostruct cannot print (a quantity Go keeps as an inf.Dec, a timestamp) the
bytes hashed are the template's canonical JSON instead: the name then has the same shape but
not upstream's value. The hash is only a name: the controller finds a Deployment's current
ReplicaSet by comparing templates, never by recomputing the hash.
"""

from __future__ import annotations

import struct

import orjson

from .gostruct import Unsupported, render

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes, h: int = _FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode_string(s: str) -> str:
    """rand.SafeEncodeString: each character mapped onto the vowel-free alphabet."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in s)


def compute_hash(template: dict, collision_count: int | None = None) -> str:
    """The pod-template-hash of a pod template (without its own hash label)."""
    try:
        data = render(template).encode()
    except Unsupported:
        data = orjson.dumps(template or {}, option=orjson.OPT_SORT_KEYS)
    h = fnv32a(data)
    if collision_count is not None:
        h = fnv32a(struct.pack("<II", collision_count & 0xFFFFFFFF, 0), h)
    return safe_encode_string(str(h))
