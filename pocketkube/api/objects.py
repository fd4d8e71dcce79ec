"""Objects as they travel between the store and clients: encoding, versions, system metadata.

The store holds JSON bytes without `metadata.resourceVersion`, because the revision is only
known once the store has committed the write; it is put back on every read from the key's mod
revision. This module also fills the fields a server owns on create (uid, creationTimestamp,
generated names), and builds List objects and continue tokens.
"""

from __future__ import annotations

import base64
import random
import re
from typing import Any

import orjson

from ..store import KV
from .errors import bad_request, expired
from .resources import Resource

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # upstream's utilrand alphabet: no vowels, no confusables


def random_suffix(n: int = 5) -> str:
    return "".join(random.choices(_NAME_CHARS, k=n))


_UUID4_CLEAR = ~((0xf000 << 64) | (0xc000 << 48))   # the version and variant bits
_UUID4_SET = (4 << 76) | (0x8000 << 48)               # version 4, RFC 4122 variant


def new_uid() -> str:
    # A version-4 UUID from the module's PRNG (seeded from the OS at start): uuid4() reads
    # os.urandom on every call, a syscall that costs more than the rest of a create here; and
    # the bits are set and formatted directly, as uuid.UUID(int=..., version=4) would, at a
    # quarter of its cost.
    h = f"{(random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# ObjectMeta fields Go omits when empty (omitempty): a client that removes the last finalizer
# or label must see the field gone, as from a real apiserver, not an empty list or map.
_OMIT_EMPTY = ("finalizers", "ownerReferences", "labels", "annotations", "managedFields")


def encode(obj: dict) -> bytes:
    """Bytes to store: without resourceVersion (the store's revision), empty metadata omitted."""
    meta = obj.get("metadata")
    rv = None
    if isinstance(meta, dict):
        rv = meta.pop("resourceVersion", None)
        for k in _OMIT_EMPTY:
            if k in meta and not meta[k] and isinstance(meta[k], (list, dict)):
                del meta[k]
    try:
        # orjson hands back its growth buffer: ~8 KiB allocated for a 2 KiB pod. The store keeps
        # these bytes (current values, recent changes), so keep an exact-size copy instead.
        return memoryview(orjson.dumps(obj)).tobytes()
    finally:
        if rv is not None:
            meta["resourceVersion"] = rv


def decode(kv: KV) -> dict:
    obj = orjson.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


def decode_value(value: bytes, revision: int) -> dict:
    obj = orjson.loads(value)
    obj["metadata"]["resourceVersion"] = str(revision)
    return obj


# Stored bytes that open with apiVersion, kind and metadata (what kubectl, the Python client and
# our own controllers send: Go and the client write those keys first). The quotes and
# backslashes excluded from the two values make the match the top-level metadata, never one
# nested in a string or a later field.
_METADATA_OPENS = re.compile(rb'\{"apiVersion":"[^"\\]*","kind":"[^"\\]*","metadata":\{')


def event_line(kind: str, value: bytes, revision: int) -> bytes:
    """A watch event's JSON line for the stored `value` at `revision`, as orjson would write
    {"type": kind, "object": decode_value(value, revision)} but with resourceVersion first in
    metadata (key order means nothing in JSON). The stored bytes are copied with the version
    put in, which costs a fraction of encoding the decoded object again; bytes of another shape
    take that longer way."""
    m = _METADATA_OPENS.match(value)
    if m is None:
        return orjson.dumps({"type": kind, "object": decode_value(value, revision)},
                            option=orjson.OPT_APPEND_NEWLINE)
    at = m.end()
    version = b'"resourceVersion":"%d"' % revision
    if value[at:at + 1] != b"}":
        version += b","
    return b"".join((b'{"type":"', kind.encode(), b'","object":', value[:at], version, value[at:], b"}\n"))


def deep_copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


def make_list(res: Resource, items: list[dict], revision: int, continue_token: str = "",
              remaining: int | None = None) -> dict:
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if continue_token:
        meta["continue"] = continue_token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}


def encode_continue(revision: int, last_key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str, prefix: str, compacted: int) -> tuple[int, str]:
    try:
        pad = "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(token + pad))
        rv, start = int(data["rv"]), str(data["start"])
    except Exception:
        raise bad_request("continue key is not valid: illegal base64 data at input byte 0") from None
    if not start.startswith(prefix):
        raise bad_request("continue key is not valid: key does not match the list prefix")
    if rv <= compacted:
        raise expired("The provided continue parameter is too old to display a consistent list result. "
                      "You can start a new list without the continue parameter, or use the continue "
                      "token in this response to retrieve the remainder of the results. Continuing "
                      "with the provided token results in an inconsistent list - objects that were "
                      "created, modified, or deleted between the time the first chunk was returned "
                      "and now may show up in the list.")
    return rv, start


def object_name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""
