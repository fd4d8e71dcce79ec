"""The API: every read and write of a Kubernetes object goes through `Api`.

This is where a request becomes a stored object: decode, check the fields against the kind's
schema, default, apply the kind's strategy, validate, version, and store; and where each
failure becomes the `Status` a real apiserver would send. The HTTP server and in-process
callers (controllers, scheduler, agent) use the same methods, so they see one behaviour.
Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..clock import Clock
from ..store import KV, KeyExists, KeyNotFound, RevisionMismatch, Store, StoreError
from . import decode as decoding
from . import errors, objects, strategy
from .defaults import apply_defaults, apply_status_update_defaults, status_update_keeps_spec
from .errors import ApiError, FieldError
from .fields import getter
from .patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from .resources import Resource, lookup
from .schema import Node
from .selectors import parse_field_selector, parse_label_selector, selector_string
from .validation import validate, validate_status_update
from .watching import DecodedEvents

MAX_BODY = 3 * 1024 * 1024
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME_DEFAULTS = frozenset({"Job", "Namespace"})  # kinds whose defaults derive from the name
NAMESPACES = lookup("", "v1", "namespaces")
PODS = lookup("", "v1", "pods")
STORAGE_CLASSES = lookup("storage.k8s.io", "v1", "storageclasses")
_DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                              "storageclass.beta.kubernetes.io/is-default-class")

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


@dataclass
class WriteOptions:
    """Query parameters every write accepts."""

    dry_run: bool = False
    field_validation: str = "Warn"   # the server default since Kubernetes 1.27
    field_manager: str = ""
    force: bool = False
    # In-process callers build well-typed objects themselves: skip the schema type check.
    trusted: bool = False
    # The in-process caller will not use the object written: it can serve the watchers as their
    # decoded copy of the event (see DecodedEvents.expect), sparing one decode per watched write.
    share: bool = False


@dataclass
class Result:
    obj: dict
    warnings: list[str] = field(default_factory=list)
    created: bool = False
    code: int = 200


def _meta(obj: dict) -> dict:
    m = obj.get("metadata")
    if m is None:
        m = obj["metadata"] = {}
    return m


def _check_field_validation(mode: str) -> str:
    if mode in ("", None):
        return "Warn"
    if mode not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f'fieldValidation parameter unsupported: {mode}; expected one of Ignore, Warn, Strict')
    return mode


class Api:
    def __init__(self, store: Store, clock: Clock | None = None):
        self.store = store
        self.clock = clock or Clock()
        self._nodes: dict[str, Node | None] = {}
        self.decoded_events = DecodedEvents()
        self._ns_terminating: dict[str, tuple[int, bool]] = {}

    # ---- helpers -------------------------------------------------------------------------------

    def schema(self, group: str, version: str, kind: str) -> Node | None:
        key = f"{group}/{version}/{kind}"
        if key not in self._nodes:
            self._nodes[key] = Node.for_kind(group, version, kind)
        return self._nodes[key]

    def _node(self, res: Resource) -> Node | None:
        return self.schema(res.group, res.version, res.kind)

    async def bootstrap(self) -> None:
        """Create what a fresh cluster has: the four system namespaces."""
        for ns in SYSTEM_NAMESPACES:
            if await self.store.get(NAMESPACES.key("", ns)) is None:
                try:
                    await self.create(NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns}},
                                      WriteOptions(trusted=True))
                except ApiError as e:
                    if e.reason != "AlreadyExists":
                        raise

    async def _get_kv(self, res: Resource, ns: str, name: str) -> KV:
        kv = await self.store.get(res.key(ns, name))
        if kv is None:
            raise errors.not_found_error(res.plural, res.group, name)
        return kv

    async def _get_raw(self, res: Resource, ns: str, name: str) -> dict:
        return objects.decode(await self._get_kv(res, ns, name))

    async def _ensure_namespace(self, res: Resource, ns: str) -> None:
        if not res.namespaced:
            return
        kv = await self.store.get(NAMESPACES.key("", ns))
        if kv is None:
            raise errors.not_found_error("namespaces", "", ns)
        # Every namespaced write asks; decode the namespace only when it has changed.
        seen = self._ns_terminating.get(ns)
        if seen is None or seen[0] != kv.mod_revision:
            nsobj = orjson.loads(kv.value)
            seen = self._ns_terminating[ns] = (kv.mod_revision, bool(_meta(nsobj).get("deletionTimestamp")))
        if seen[1] and res.plural not in ("events",):
            raise ApiError(403, "Forbidden",
                           f"{errors.qualified_resource(res.plural, res.group)} "
                           f"{errors.go_quote(ns)} is forbidden: unable to create new "
                           f"content in namespace {ns} because it is being terminated",
                           {"name": ns, "group": res.group, "kind": res.plural,
                            "causes": [{"reason": "NamespaceTerminating",
                                        "message": f"namespace {ns} is being terminated",
                                        "field": "metadata.namespace"}]})

    async def _admit(self, res: Resource, obj: dict) -> None:
        """The DefaultStorageClass admission plugin of a default kube-apiserver: a claim naming
        no class gets the default one at once, so the scheduler never sees it classless.
        (The protection finalizers, which upstream admits here too, are added by the storage
        protection controller once a claim is bound.)"""
        if res.plural == "persistentvolumeclaims":
            spec = obj.get("spec")
            if isinstance(spec, dict) and "storageClassName" not in spec:
                default = await self._default_storage_class()
                if default:
                    spec["storageClassName"] = default

    async def _default_storage_class(self) -> str | None:
        """The newest class marked default (upstream's choice when several are)."""
        kvs, _, _ = await self.store.list(STORAGE_CLASSES.list_prefix(None))
        best: tuple[str, str] | None = None
        for kv in kvs:
            meta = _meta(orjson.loads(kv.value))
            ann = meta.get("annotations") or {}
            if any(ann.get(a) == "true" for a in _DEFAULT_CLASS_ANNOTATIONS):
                cand = (meta.get("creationTimestamp") or "", meta.get("name") or "")
                if best is None or cand > best:
                    best = cand
        return best[1] if best else None

    def _check_type(self, res: Resource, obj: Any, subresource_kind: tuple[str, str] | None = None) -> dict:
        """The body must be an object of this kind (or of the subresource's kind)."""
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request was in an unknown format - "
                                     "accepted media types include: application/json, application/yaml")
        api_version, kind = subresource_kind or (res.api_version, res.kind)
        # As the apiserver's decoder does, a missing kind or apiVersion defaults to the endpoint's.
        body_kind = obj.get("kind") or kind
        body_version = obj.get("apiVersion")
        if body_version and body_version != api_version:
            raise errors.bad_request(
                f"the API version in the data ({body_version}) does not match the expected API version ({api_version})")
        if body_kind != kind:
            raise errors.bad_request(
                f"the kind in the data ({body_kind}) does not match the expected kind ({kind})")
        obj["apiVersion"] = api_version
        obj["kind"] = kind
        return obj

    def _strict(self, res: Resource, obj: dict, raw: bytes | None, mode: str,
                kind_override: tuple[str, str, str] | None = None) -> tuple[dict, list[str]]:
        """Type-check against the schema, then apply the fieldValidation mode."""
        g, v, k = kind_override or (res.group, res.version, res.kind)
        node = self.schema(g, v, k)
        if node is None:
            return obj, []
        api_version = f"{g}/{v}" if g else v
        decoded = decoding.check_object(node, obj, k, api_version, raw)
        if mode == "Strict" and (decoded.unknown or decoded.duplicates):
            raise decoding.strict_error(k, decoded.unknown, decoded.duplicates, api_version=api_version)
        warnings = decoding.warnings(decoded.unknown, decoded.duplicates) if mode == "Warn" else []
        return decoded.obj, warnings

    def _invalid(self, res: Resource, name: str, errs: list[FieldError]) -> ApiError:
        return errors.invalid_error(res.kind, res.group, name, errs)

    def _normalise_namespace(self, res: Resource, ns: str, obj: dict) -> None:
        meta = _meta(obj)
        if res.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and ns and body_ns != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = ns or body_ns or "default"
        else:
            meta.pop("namespace", None)

    # ---- get / list ----------------------------------------------------------------------------

    async def get(self, res: Resource, ns: str, name: str) -> dict:
        return await self._get_raw(res, ns, name)

    def matcher(self, res: Resource, label_selector: str = "", field_selector: str = ""):
        """A predicate over objects for the given selectors (None when everything matches)."""
        labels = parse_label_selector(label_selector) if label_selector else None
        if labels is not None and labels.empty():
            labels = None
        fields = parse_field_selector(field_selector) if field_selector else None
        if fields is not None and fields.empty():
            fields = None
        if labels is None and fields is None:
            return None
        bind = getter(res.plural, [f for f, _, _ in fields.requirements]) if fields else None

        def match(obj: dict) -> bool:
            if labels is not None and not labels.matches((obj.get("metadata") or {}).get("labels")):
                return False
            if fields is not None and not fields.matches(bind(obj)):
                return False
            return True
        match.fields = fields  # type: ignore[attr-defined]
        return match

    async def list(self, res: Resource, ns: str | None, label_selector: str = "", field_selector: str = "",
                   limit: int = 0, continue_token: str = "") -> dict:
        match = self.matcher(res, label_selector, field_selector)
        fields = getattr(match, "fields", None)
        prefix = res.list_prefix(ns)
        # A metadata.name=X selector within a namespace reads one key instead of the whole list.
        name = fields.value_for("metadata.name") if fields is not None else None
        if name is not None and (ns or not res.namespaced) and not continue_token:
            kv = await self.store.get(res.key(ns or "", name))
            rev = self.store.revision
            items = []
            if kv is not None:
                obj = objects.decode(kv)
                if match(obj):
                    items.append(obj)
                rev = max(rev, kv.mod_revision)
            return objects.make_list(res, items, rev)
        cursor = ""
        first_rev = 0
        if continue_token:
            first_rev, cursor = objects.decode_continue(continue_token, prefix, self.store.compacted_revision)
        items: list[dict] = []
        exhausted = False
        while True:
            want = (limit - len(items)) if limit else 0
            # With a selector, read ahead: most keys of a page may not match.
            page_size = max(want, 500) if (limit and match) else want
            kvs, rev, more = await self.store.list(prefix, cursor, page_size)
            hit_limit = False
            for kv in kvs:
                cursor = kv.key
                obj = objects.decode(kv)
                if match is None or match(obj):
                    items.append(obj)
                    if limit and len(items) >= limit:
                        hit_limit = True
                        break
            if not hit_limit:
                if more:
                    continue
                exhausted = True
            else:
                exhausted = kvs[-1].key == cursor and not more
            break
        token = objects.encode_continue(first_rev or rev, cursor) if (limit and not exhausted) else ""
        remaining = None
        if token and match is None:
            remaining = await self.store.count(prefix, start_after=cursor)
        return objects.make_list(res, items, first_rev or rev, token, remaining)

    # ---- create --------------------------------------------------------------------------------

    async def create(self, res: Resource, ns: str, body: Any, opts: WriteOptions | None = None,
                     raw: bytes | None = None) -> Result:
        opts = opts or WriteOptions()
        mode = _check_field_validation(opts.field_validation)
        obj = self._check_type(res, body)
        warnings: list[str] = []
        if not opts.trusted:
            obj, warnings = self._strict(res, obj, raw, mode)
        self._normalise_namespace(res, ns, obj)
        meta = _meta(obj)
        ns = meta.get("namespace", "")
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        await self._ensure_namespace(res, ns)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "selfLink", "managedFields"):
            meta.pop(k, None)
        meta["uid"] = objects.new_uid()
        meta["creationTimestamp"] = self.clock.rfc3339()
        generate = bool(meta.get("generateName")) and not meta.get("name")
        strategy.prepare_for_create(res, obj)
        await self._admit(res, obj)
        # Some defaults use the name (Job and Namespace labels): name first, then default, and
        # a retry under another generated name starts again from the undefaulted object. Other
        # kinds' defaults only fill in what is missing, so a retry reuses the defaulted object.
        template = objects.deep_copy(obj) if generate and res.kind in _NAME_DEFAULTS else None
        for attempt in range(8):
            if generate:
                if attempt and template is not None:
                    obj = objects.deep_copy(template)
                    meta = obj["metadata"]
                meta["name"] = meta["generateName"][: max(0, 63 - 5)] + objects.random_suffix()
            apply_defaults(res, obj, create=True)
            errs = validate(res, obj, None)
            if errs:
                raise self._invalid(res, meta.get("name") or meta.get("generateName", ""), errs)
            if opts.dry_run:
                if await self.store.get(res.key(ns, meta["name"])) is not None and not generate:
                    raise errors.already_exists(res.plural, res.group, meta["name"])
                return Result(obj, warnings, created=True, code=201)
            value = objects.encode(obj)
            if opts.share:
                self.decoded_events.expect(value, obj)
            try:
                rev = await self.store.create(res.key(ns, meta["name"]), value)
            except KeyExists:
                if generate and attempt < 7:
                    continue
                if generate:
                    raise ApiError(409, "AlreadyExists",
                                   f"{errors.qualified_resource(res.plural, res.group)} "
                                   f"{errors.go_quote(meta['name'])} already exists, the server was not able "
                                   f"to generate a unique name for the object",
                                   {"name": meta["name"], "group": res.group, "kind": res.plural}) from None
                raise errors.already_exists(res.plural, res.group, meta["name"]) from None
            except StoreError as e:
                raise errors.internal_error(str(e)) from None
            meta["resourceVersion"] = str(rev)
            return Result(obj, warnings, created=True, code=201)
        raise AssertionError("unreachable")

    # ---- update --------------------------------------------------------------------------------

    async def _write_update(self, res: Resource, ns: str, name: str, old: dict, new: dict,
                            dry_run: bool, stored: bytes | None = None, share: bool = False) -> dict:
        """Store `new` over `old` (expected revision = old's), finishing deletion if it is due.

        `stored` is old's encoding as read from the store, when the caller has it; `share`: see
        WriteOptions.
        """
        meta = new["metadata"]
        old_rv = int(old["metadata"]["resourceVersion"])
        meta.pop("resourceVersion", None)
        value = objects.encode(new)
        unchanged = value == (stored if stored is not None else objects.encode(old))
        meta["resourceVersion"] = str(old_rv)
        if unchanged:
            return new
        if dry_run:
            return new
        key = res.key(ns, name)
        if self._should_delete_during_update(res, new):
            rev = await self.store.delete(key, old_rv)
            meta["resourceVersion"] = str(rev)
            return new
        if share:
            self.decoded_events.expect(value, new)
        rev = await self.store.update(key, value, old_rv)
        meta["resourceVersion"] = str(rev)
        return new

    @staticmethod
    def _should_delete_during_update(res: Resource, obj: dict) -> bool:
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        if res.plural == "namespaces":
            return not (obj.get("spec") or {}).get("finalizers")
        return not meta.get("deletionGracePeriodSeconds")

    async def _guaranteed_update(self, res: Resource, ns: str, name: str, mutate, dry_run: bool,
                                 retry: bool, share: bool = False, read_shared: bool = False) -> dict:
        """Read, mutate, write with the read revision; re-read and retry on a race if allowed.

        `read_shared`: `mutate` only reads the stored object, so the watchers' decoded copy will
        do (usually there already: no decode)."""
        for _ in range(16):
            kv = await self._get_kv(res, ns, name)
            old = self.decoded_events.get(kv.value, kv.mod_revision) if read_shared else objects.decode(kv)
            new = await mutate(old)
            try:
                return await self._write_update(res, ns, name, old, new, dry_run, kv.value, share)
            except RevisionMismatch:
                if not retry:
                    raise errors.conflict(res.plural, res.group, name, errors.STALE) from None
            except KeyNotFound:
                raise errors.not_found_error(res.plural, res.group, name) from None
            except StoreError as e:
                raise errors.internal_error(str(e)) from None
        raise errors.conflict(res.plural, res.group, name, errors.STALE)

    def _merge_system_meta(self, res: Resource, new: dict, old: dict) -> None:
        """Fields a client cannot change through an update keep their stored values."""
        meta, old_meta = _meta(new), old["metadata"]
        uid = meta.get("uid")
        if uid and uid != old_meta.get("uid"):
            raise errors.conflict(res.plural, res.group, old_meta.get("name", ""),
                                  f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old_meta.get('uid')}")
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "selfLink"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if "generateName" not in meta and "generateName" in old_meta:
            meta["generateName"] = old_meta["generateName"]
        if "managedFields" in old_meta and "managedFields" not in meta:
            meta["managedFields"] = old_meta["managedFields"]

    def _prepare_update(self, res: Resource, ns: str, name: str, new: dict, old: dict,
                        subresource: str | None) -> dict:
        self._normalise_namespace(res, ns, new)
        meta = _meta(new)
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        meta["name"] = name
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res.plural, res.group, name, errors.STALE)
        self._merge_system_meta(res, new, old)
        if subresource == "status":
            strategy.prepare_for_status_update(res, new, old)
            apply_status_update_defaults(res, new)
            errs = validate_status_update(res, new, old)
        elif subresource == "finalize":
            # Only spec.finalizers of a namespace changes here.
            finalizers = (new.get("spec") or {}).get("finalizers")
            new.clear()
            new.update(objects.deep_copy(old))
            new.setdefault("spec", {})["finalizers"] = finalizers or []
            if not finalizers:
                new["spec"].pop("finalizers")
            errs = []
        else:
            strategy.prepare_for_update(res, new, old)
            apply_defaults(res, new, create=False)
            errs = validate(res, new, old)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if errs:
            raise self._invalid(res, name, errs)
        return new

    async def update(self, res: Resource, ns: str, name: str, body: Any, opts: WriteOptions | None = None,
                     raw: bytes | None = None, subresource: str | None = None) -> Result:
        opts = opts or WriteOptions()
        mode = _check_field_validation(opts.field_validation)
        obj = self._check_type(res, body)
        warnings: list[str] = []
        if not opts.trusted:
            obj, warnings = self._strict(res, obj, raw, mode)
        has_rv = bool(_meta(obj).get("resourceVersion"))
        if subresource is None and not has_rv and res.plural in ("events",):
            # Events allow create on update (the event recorder relies on it).
            try:
                await self._get_raw(res, ns, name)
            except ApiError:
                # create() fills in the object in place; the caller's copy stays as it was.
                return await self.create(res, ns, objects.deep_copy(obj), opts)

        # A status update of a kind whose spec it keeps as stored only reads the stored object
        # (the new one takes its spec and parts of its metadata, read-only from then on).
        read_shared = opts.share and subresource == "status" and status_update_keeps_spec(res)

        async def mutate(old: dict) -> dict:
            if subresource == "status":
                # Everything but status and metadata is replaced by the stored object's (fresh per
                # attempt): copying the body's spec would be thrown away. Only metadata's own
                # keys are set or replaced from here on: a caller that gives its body up (share)
                # needs only a shallow copy of it. Nothing here changes the status of such a
                # kind (no defaults): one given up is stored as it is.
                body = dict(obj)
                if "status" in body and not read_shared:
                    body["status"] = objects.deep_copy(body["status"])
                if "metadata" in body:
                    meta = body["metadata"]
                    shallow = opts.share and isinstance(meta, dict)
                    body["metadata"] = dict(meta) if shallow else objects.deep_copy(meta)
            else:
                body = objects.deep_copy(obj)
            return self._prepare_update(res, ns, name, body, old, subresource)
        new = await self._guaranteed_update(res, ns, name, mutate, opts.dry_run, retry=not has_rv,
                                            share=opts.share, read_shared=read_shared)
        return Result(new, warnings)

    # ---- patch ---------------------------------------------------------------------------------

    def _apply_patch(self, res: Resource, patch_type: str, current: dict, raw: bytes,
                     node: Node | None) -> dict:
        if patch_type == JSON_PATCH:
            patch = decoding.decode_body(raw, "application/json")
            return apply_json_patch(current, patch)
        if patch_type == MERGE_PATCH:
            patch = decoding.decode_body(raw, "application/json")
            return apply_merge_patch(current, patch)
        if patch_type == STRATEGIC_PATCH:
            patch = decoding.decode_body(raw, "application/json")
            return apply_strategic_merge_patch(current, patch, node)
        if patch_type == APPLY_PATCH:
            # Server-side apply, simplified: the applied configuration is merged over the live
            # object with the kind's merge keys (no managedFields ownership or conflicts yet).
            patch = decoding.decode_body(raw, "application/yaml")
            if not isinstance(patch, dict):
                raise errors.bad_request("error decoding YAML: the applied configuration is not an object")
            patch = {k: v for k, v in patch.items() if k != "status"}
            return apply_strategic_merge_patch(current, patch, node)
        raise errors.unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(PATCH_TYPES)}")

    async def patch(self, res: Resource, ns: str, name: str, patch_type: str, raw: bytes,
                    opts: WriteOptions | None = None, subresource: str | None = None) -> Result:
        opts = opts or WriteOptions()
        mode = _check_field_validation(opts.field_validation)
        node = self._node(res)
        warnings: list[str] = []

        async def mutate(old: dict) -> dict:
            patched = self._apply_patch(res, patch_type, objects.deep_copy(old), raw, node)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch did not produce an object")
            patched.setdefault("kind", res.kind)
            patched.setdefault("apiVersion", res.api_version)
            checked = self._check_type(res, patched)
            if not opts.trusted:
                checked, w = self._strict(res, checked, None, mode)
                warnings[:] = w
            meta = _meta(checked)
            # A resourceVersion in the patch is a precondition; otherwise the stored one is used.
            if meta.get("resourceVersion") == old["metadata"]["resourceVersion"]:
                meta.pop("resourceVersion")
            return self._prepare_update(res, ns, name, checked, old, subresource)

        if patch_type == APPLY_PATCH:
            try:
                await self._get_raw(res, ns, name)
            except ApiError as e:
                if e.code != 404 or subresource:
                    raise
                body = decoding.decode_body(raw, "application/yaml")
                if isinstance(body, dict):
                    _meta(body).setdefault("name", name)
                return await self.create(res, ns, body, opts)
        new = await self._guaranteed_update(res, ns, name, mutate, opts.dry_run, retry=True)
        return Result(new, warnings)

    # ---- delete --------------------------------------------------------------------------------

    def _grace_period(self, res: Resource, obj: dict, options: dict) -> int:
        """Seconds of graceful deletion: only pods bound to a node and not finished wait."""
        if res.plural != "pods":
            return 0
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        grace = max(0, int(grace))
        current = _meta(obj).get("deletionGracePeriodSeconds")
        if current is not None:
            grace = min(grace, current)
        return grace

    @staticmethod
    def _propagation(res: Resource, options: dict) -> str:
        policy = options.get("propagationPolicy")
        if policy:
            return policy
        orphan = options.get("orphanDependents")
        if orphan is True:
            return "Orphan"
        if orphan is False:
            return "Background"
        return "Orphan" if res.plural in strategy.ORPHAN_BY_DEFAULT else "Background"

    async def delete(self, res: Resource, ns: str, name: str, options: dict | None = None,
                     share: bool = False, current: dict | None = None) -> Result:
        """`share`: the in-process caller will not use the result (see WriteOptions). `current`:
        the caller's watched copy of the object (Client.delete), read instead of the watchers'
        copy when it is of the stored revision: an object a rollout deletes was decoded long
        ago, and that copy has usually left DecodedEvents since."""
        options = options or {}
        policy = self._propagation(res, options)
        if policy not in ("Orphan", "Background", "Foreground"):
            raise errors.invalid_error("DeleteOptions", "", "", [errors.not_supported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
        if options.get("orphanDependents") is not None and options.get("propagationPolicy"):
            raise errors.invalid_error("DeleteOptions", "", "", [errors.invalid(
                "propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set")])
        grace_opt = options.get("gracePeriodSeconds")
        if grace_opt is not None and (not isinstance(grace_opt, int) or isinstance(grace_opt, bool)):
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        dry_run = bool(options.get("dryRun"))
        pre = options.get("preconditions") or {}
        for attempt in range(16):
            kv = await self._get_kv(res, ns, name)
            # A caller that wants no result reads the watchers' copy (usually decoded already):
            # `obj` is then only read.
            if not share:
                obj = objects.decode(kv)
            elif current is not None and current["metadata"].get("resourceVersion") == str(kv.mod_revision):
                obj = current
            else:
                obj = self.decoded_events.get(kv.value, kv.mod_revision)
            meta = obj["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise errors.conflict(res.plural, res.group, name,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise errors.conflict(res.plural, res.group, name,
                                      f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                      f"ResourceVersion in object meta: {meta.get('resourceVersion')}")
            old_rv = int(meta["resourceVersion"])
            finalizers = [f for f in meta.get("finalizers") or [] if f not in ("orphan", "foregroundDeletion")]
            if policy == "Orphan":
                finalizers.append("orphan")
            elif policy == "Foreground":
                finalizers.append("foregroundDeletion")
            # An object already being deleted only changes its finalizers if the caller asked.
            if meta.get("deletionTimestamp") and not options.get("propagationPolicy") and \
                    options.get("orphanDependents") is None:
                finalizers = list(meta.get("finalizers") or [])
            grace = self._grace_period(res, obj, options)
            ns_finalizing = res.plural == "namespaces" and bool((obj.get("spec") or {}).get("finalizers"))
            if not finalizers and grace == 0 and not ns_finalizing:
                if dry_run:
                    return self._deleted_result(res, obj)
                try:
                    rev = await self.store.delete(res.key(ns, name), old_rv)
                except RevisionMismatch:
                    continue
                except KeyNotFound:
                    raise errors.not_found_error(res.plural, res.group, name) from None
                if not share:   # (a shared copy is not ours to change; the result is dropped)
                    obj["metadata"]["resourceVersion"] = str(rev)
                return self._deleted_result(res, obj)
            # Only metadata (and a namespace's status) changes: copy those dicts, share the rest
            # with `obj`, which is only read from here on.
            nmeta = dict(meta)
            new = {**obj, "metadata": nmeta}
            if finalizers:
                nmeta["finalizers"] = finalizers
            else:
                nmeta.pop("finalizers", None)
            now = self.clock.now()
            if not meta.get("deletionTimestamp") or grace < (meta.get("deletionGracePeriodSeconds") or 0):
                nmeta["deletionTimestamp"] = self.clock.rfc3339(now + grace)
            nmeta["deletionGracePeriodSeconds"] = grace
            if res.plural == "namespaces":
                new["status"] = dict(new.get("status") or {}, phase="Terminating")
            if dry_run:
                return Result(new, code=200)
            try:
                written = await self._write_update(res, ns, name, obj, new, False, kv.value, share=share)
            except RevisionMismatch:
                continue
            except KeyNotFound:
                raise errors.not_found_error(res.plural, res.group, name) from None
            code = 202 if options.get("orphanDependents") is False else 200
            return Result(written, code=code)
        raise errors.conflict(res.plural, res.group, name, errors.STALE)

    def _deleted_result(self, res: Resource, obj: dict) -> Result:
        if res.plural in ("pods", "namespaces"):
            return Result(obj)
        meta = obj["metadata"]
        details = {"name": meta.get("name", ""), "kind": res.plural, "uid": meta.get("uid", "")}
        if res.group:
            details["group"] = res.group
        return Result({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                       "details": details})

    async def delete_collection(self, res: Resource, ns: str | None, options: dict | None = None,
                                label_selector: str = "", field_selector: str = "") -> dict:
        listed = await self.list(res, ns, label_selector, field_selector)
        deleted = []
        for obj in listed["items"]:
            meta = obj["metadata"]
            try:
                r = await self.delete(res, meta.get("namespace", ""), meta["name"], dict(options or {}))
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(r.obj if r.obj.get("kind") != "Status" else obj)
        listed["items"] = deleted
        return listed

    # ---- scale ---------------------------------------------------------------------------------

    def to_scale(self, res: Resource, obj: dict) -> dict:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                      if k in meta}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
                "spec": {"replicas": spec.get("replicas", 0)},
                "status": {"replicas": status.get("replicas", 0),
                           "selector": selector_string(spec.get("selector"))}}

    async def get_scale(self, res: Resource, ns: str, name: str) -> dict:
        return self.to_scale(res, await self._get_raw(res, ns, name))

    async def _scale_to(self, res: Resource, ns: str, name: str, scale: dict, opts: WriteOptions) -> dict:
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.bad_request("Scale in version \"v1\" cannot be handled as a Scale: json: cannot "
                                     "unmarshal into Go struct field ScaleSpec.spec.replicas of type int32")
        if replicas < 0:
            raise errors.invalid_error("Scale", "autoscaling", name, [
                errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        want_rv = (scale.get("metadata") or {}).get("resourceVersion")

        async def mutate(old: dict) -> dict:
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(res.plural, res.group, name, errors.STALE)
            new = objects.deep_copy(old)
            new.setdefault("spec", {})["replicas"] = replicas
            return self._prepare_update(res, ns, name, new, old, None)
        new = await self._guaranteed_update(res, ns, name, mutate, opts.dry_run, retry=not want_rv)
        return self.to_scale(res, new)

    async def update_scale(self, res: Resource, ns: str, name: str, body: Any,
                           opts: WriteOptions | None = None) -> dict:
        scale = self._check_type(res, body, ("autoscaling/v1", "Scale"))
        scale, _ = self._strict(res, scale, None, "Strict", ("autoscaling", "v1", "Scale"))
        return await self._scale_to(res, ns, name, scale, opts or WriteOptions())

    async def patch_scale(self, res: Resource, ns: str, name: str, patch_type: str, raw: bytes,
                          opts: WriteOptions | None = None) -> dict:
        current = await self.get_scale(res, ns, name)
        patched = self._apply_patch(res, patch_type, current, raw, self.schema("autoscaling", "v1", "Scale"))
        if isinstance(patched, dict) and (patched.get("metadata") or {}).get("resourceVersion") == \
                current["metadata"]["resourceVersion"]:
            patched["metadata"].pop("resourceVersion")
        return await self._scale_to(res, ns, name, patched, opts or WriteOptions())

    # ---- pods/binding --------------------------------------------------------------------------

    async def bind(self, ns: str, name: str, body: Any, opts: WriteOptions | None = None) -> dict:
        if not isinstance(body, dict) or body.get("kind") not in (None, "Binding"):
            raise errors.bad_request("the body must be a Binding")
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid_error("Binding", "", name, [errors.required("target.name")])
        if target.get("kind") not in (None, "", "Node"):
            raise errors.invalid_error("Binding", "", name, [errors.not_supported("target.kind", target.get("kind"), ["Node"])])
        uid = (body.get("metadata") or {}).get("uid")
        now = self.clock.rfc3339()

        async def mutate(old: dict) -> dict:
            meta = old["metadata"]
            if uid and uid != meta.get("uid"):
                raise errors.conflict("pods", "", name, f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}")
            if meta.get("deletionTimestamp"):
                raise errors.conflict("pods", "", name, "pod is being deleted, cannot be assigned to a host")
            spec = old.get("spec") or {}
            if spec.get("nodeName"):
                raise errors.conflict("pods", "", name, f"pod {name} is already assigned to node {errors.go_quote(spec['nodeName'])}")
            # `old` is the watchers' copy (read-only): the new object shares what does not change
            # and copies just the dicts that do.
            status = dict(old.get("status") or {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": now})
            status["conditions"] = conds
            return {**old, "metadata": dict(meta), "spec": {**spec, "nodeName": node}, "status": status}
        # The pod written is never returned: the watchers can have it.
        await self._guaranteed_update(PODS, ns, name, mutate, bool(opts and opts.dry_run), retry=True, share=True,
                                      read_shared=True)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def wait_for(predicate, timeout: float, interval: float = 0.01) -> bool:
    """Poll `predicate()` until true or the deadline passes (for in-process callers and tests)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await predicate():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)
