"""ServiceAccount controller: every active namespace has a `default` ServiceAccount.

Why it exists: pods that name no service account run as `default`, and tools (and the
ServiceAccount admission rules of a real cluster) expect it to exist in every namespace, the
four system ones included. kube-controller-manager's serviceaccount controller
(pkg/controller/serviceaccount/serviceaccounts_controller.go) creates it when a namespace
appears and again whenever someone deletes it; namespaces that are not Active (Terminating) are
left alone.
"""

from __future__ import annotations

from ..api.errors import ApiError
from .base import Controller
from .podcontrol import NAMESPACE_TERMINATING_CAUSE, has_status_cause

ENSURED = ("default",)


class ServiceAccountController(Controller):
    name = "serviceaccount"
    workers = 1                 # --concurrent-serviceaccount-syncs

    def setup(self) -> None:
        self.namespaces = self.informers.get("namespaces")
        self.accounts = self.informers.get("serviceaccounts")
        self.namespaces.add_handler(self._on_namespace)
        self.accounts.add_handler(self._on_account)

    def _on_namespace(self, kind: str, old: dict | None, new: dict | None) -> None:
        if new is not None:
            self.queue.add(new["metadata"]["name"])

    def _on_account(self, kind: str, old: dict | None, new: dict | None) -> None:
        if kind == "DELETED" and old["metadata"].get("name") in ENSURED:
            self.queue.add(old["metadata"].get("namespace") or "")

    async def sync(self, namespace: str) -> None:
        ns = self.namespaces.get(namespace)
        if ns is None or (ns.get("status") or {}).get("phase", "Active") != "Active" \
                or ns["metadata"].get("deletionTimestamp"):
            return
        for name in ENSURED:
            if self.accounts.get(f"{namespace}/{name}") is not None:
                continue
            try:
                await self.client.create("serviceaccounts", namespace, {
                    "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
            except ApiError as e:
                if e.code == 409 or has_status_cause(e, NAMESPACE_TERMINATING_CAUSE):
                    continue
                raise
