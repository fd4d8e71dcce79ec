"""Persistent volumes in process: the binder's matching rules and phases, pre-bound volumes and
claims, the default StorageClass, WaitForFirstConsumer with the scheduler, the local-path
provisioner, the reclaim policies and the protection finalizers."""

from __future__ import annotations

import asyncio

from pocketkube.controllers.persistentvolume import PersistentVolumeController
from pocketkube.controllers.persistentvolume.index import find_best_match
from pocketkube.controllers.persistentvolume.protection import StorageProtectionController
from pocketkube.controllers.persistentvolume.provisioner import LocalPathProvisioner, helper_pod, node_path
from tests.unit.harness import ControllerEnv, run

PVS = "persistentvolumes"
PVCS = "persistentvolumeclaims"
SC = "storageclasses.storage.k8s.io"


def pv(name, size="1Gi", modes=("ReadWriteOnce",), cls="manual", policy="Retain", labels=None, **spec):
    source = spec.pop("source", {"hostPath": {"path": f"/tmp/pk-test-{name}"}})
    body = {"capacity": {"storage": size}, "accessModes": list(modes), "persistentVolumeReclaimPolicy": policy,
            **source, **spec}
    if cls is not None:
        body["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": dict(labels or {})}, "spec": body}


def pvc(name, size="1Gi", modes=("ReadWriteOnce",), cls="manual", **spec):
    body = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec}
    if cls is not None:
        body["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": body}


def sc(name, mode="Immediate", provisioner="kubernetes.io/no-provisioner", default=False, **extra):
    meta = {"name": name}
    if default:
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta,
            "provisioner": provisioner, "volumeBindingMode": mode, **extra}


class Env(ControllerEnv):
    def __init__(self, tmp_path, nodes=0, extra=()):
        super().__init__(tmp_path, [PersistentVolumeController, *extra], nodes=nodes)

    async def get_pv(self, name):
        return await self.get_or_none(PVS, None, name)

    async def get_pvc(self, name, ns="default"):
        return await self.get_or_none(PVCS, ns, name)

    async def wait_pvc_phase(self, name, phase, timeout=10.0, tick=0.0):
        async def ok():
            c = await self.get_pvc(name)
            return c if c and (c.get("status") or {}).get("phase") == phase else None
        return await self.until(ok, timeout, f"claim {name} {phase}", tick=tick)

    async def wait_pv_phase(self, name, phase, timeout=10.0, tick=0.0):
        async def ok():
            v = await self.get_pv(name)
            return v if v and (v.get("status") or {}).get("phase") == phase else None
        return await self.until(ok, timeout, f"volume {name} {phase}", tick=tick)

    async def events(self, reason, ns="default"):
        await self.controller(PersistentVolumeController).recorder.flush()
        items = (await self.c.list("events", ns))["items"]
        return [e for e in items if e["reason"] == reason]

    async def wait_event(self, reason, ns="default", timeout=10.0, tick=0.0):
        async def ok():
            return await self.events(reason, ns)
        return (await self.until(ok, timeout, f"event {reason}", tick=tick))[0]


# ---- matching rules (pure) ----------------------------------------------------------------------


def _avail(obj):
    obj.setdefault("status", {})["phase"] = "Available"
    obj["metadata"].setdefault("uid", obj["metadata"]["name"])
    return obj


def _claim(obj, ns="default"):
    obj["metadata"].update(namespace=ns, uid="c-" + obj["metadata"]["name"])
    obj["spec"].setdefault("volumeMode", "Filesystem")
    return obj


def test_match_smallest_volume_that_fits():
    vols = [_avail(pv("big", "10Gi")), _avail(pv("small", "1Gi")), _avail(pv("mid", "5Gi"))]
    assert find_best_match(_claim(pvc("c", "2Gi")), vols, False)["metadata"]["name"] == "mid"
    assert find_best_match(_claim(pvc("c", "500Mi")), vols, False)["metadata"]["name"] == "small"
    assert find_best_match(_claim(pvc("c", "11Gi")), vols, False) is None


def test_match_prefers_smallest_access_mode_superset():
    vols = [_avail(pv("rwo-rwx", "1Gi", ("ReadWriteOnce", "ReadWriteMany"))),
            _avail(pv("rwo", "5Gi", ("ReadWriteOnce",)))]
    # A bigger volume with exactly the claim's modes beats a smaller one with more modes.
    assert find_best_match(_claim(pvc("c", "1Gi")), vols, False)["metadata"]["name"] == "rwo"
    assert find_best_match(_claim(pvc("c", "1Gi", ("ReadWriteMany",))), vols, False)["metadata"]["name"] == "rwo-rwx"
    assert find_best_match(_claim(pvc("c", "1Gi", ("ReadOnlyMany",))), vols, False) is None


def test_match_class_selector_phase_and_mode():
    vols = [_avail(pv("fast", cls="fast", labels={"tier": "gold"})), _avail(pv("none", cls=None)),
            _avail(pv("slow", cls="slow", labels={"tier": "bronze"}))]
    assert find_best_match(_claim(pvc("c", cls="fast")), vols, False)["metadata"]["name"] == "fast"
    # storageClassName "" (and no class) match only volumes without a class.
    assert find_best_match(_claim(pvc("c", cls="")), vols, False)["metadata"]["name"] == "none"
    sel = {"matchLabels": {"tier": "bronze"}}
    assert find_best_match(_claim(pvc("c", cls="fast", selector=sel)), vols, False) is None
    assert find_best_match(_claim(pvc("c", cls="slow", selector=sel)), vols, False)["metadata"]["name"] == "slow"
    pending = pv("pending", cls="x")
    pending["status"] = {"phase": "Pending"}
    assert find_best_match(_claim(pvc("c", cls="x")), [pending], False) is None
    block = _avail(pv("block", cls="x", volumeMode="Block"))
    assert find_best_match(_claim(pvc("c", cls="x")), [block], False) is None


def test_match_prebound_and_delay_binding():
    pre = _avail(pv("pre", "1Gi", cls="wait", claimRef={"namespace": "default", "name": "c"}))
    free = _avail(pv("free", "1Gi", cls="wait"))
    claim = _claim(pvc("c", "1Gi", cls="wait"))
    # A WaitForFirstConsumer claim binds only a volume pre-bound to it (the scheduler's choice).
    assert find_best_match(claim, [free], True) is None
    assert find_best_match(claim, [free, pre], True)["metadata"]["name"] == "pre"
    other = _claim(pvc("other", "1Gi", cls="wait"))
    assert find_best_match(other, [pre], False) is None


# ---- the controller ------------------------------------------------------------------------------


def test_static_binding_phases_annotations_and_claim_status(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(PVS, None, pv("v-big", "10Gi", ("ReadWriteMany",)))
            await env.c.create(PVS, None, pv("v-small", "3Gi", ("ReadWriteMany",)))
            await env.wait_pv_phase("v-small", "Available")
            await env.c.create(PVCS, "default", pvc("data", "2Gi", ("ReadWriteMany",)))
            claim = await env.wait_pvc_phase("data", "Bound")
            assert claim["spec"]["volumeName"] == "v-small"
            assert claim["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes",
                                                        "pv.kubernetes.io/bound-by-controller": "yes"}
            assert claim["status"]["capacity"] == {"storage": "3Gi"}
            assert claim["status"]["accessModes"] == ["ReadWriteMany"]
            vol = await env.wait_pv_phase("v-small", "Bound")
            ref = vol["spec"]["claimRef"]
            assert ref["kind"] == "PersistentVolumeClaim" and ref["apiVersion"] == "v1"
            assert (ref["namespace"], ref["name"], ref["uid"]) == ("default", "data", claim["metadata"]["uid"])
            assert ref["resourceVersion"]
            assert vol["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
            assert (await env.get_pv("v-big"))["status"]["phase"] == "Available"
            # A claim no volume satisfies waits Pending; a volume created later binds it.
            await env.c.create(PVCS, "default", pvc("later", "20Gi", ("ReadWriteMany",)))
            await env.wait_pvc_phase("later", "Pending")
            await env.c.create(PVS, None, pv("v-huge", "30Gi", ("ReadWriteMany",)))
            assert (await env.wait_pvc_phase("later", "Bound"))["spec"]["volumeName"] == "v-huge"
    run(main())


def test_no_class_claim_gets_failed_binding_event(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(PVCS, "default", pvc("orphan", cls=""))
            ev = await env.wait_event("FailedBinding")
            assert ev["type"] == "Normal"
            assert ev["message"] == "no persistent volumes available for this claim and no storage class is set"
            assert ev["source"]["component"] == "persistentvolume-controller"
            await env.wait_pvc_phase("orphan", "Pending")
            # "" binds a class-less volume, never one with a class.
            await env.c.create(PVS, None, pv("classy", cls="manual"))
            await env.c.create(PVS, None, pv("plain", cls=None))
            assert (await env.wait_pvc_phase("orphan", "Bound"))["spec"]["volumeName"] == "plain"
    run(main())


def test_prebound_claim_and_prebound_volume(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(PVS, None, pv("wanted", "5Gi"))
            await env.c.create(PVS, None, pv("smaller", "1Gi"))
            # The claim names its volume: it gets it although a smaller one would fit.
            await env.c.create(PVCS, "default", pvc("named", "1Gi", volumeName="wanted"))
            claim = await env.wait_pvc_phase("named", "Bound")
            assert claim["spec"]["volumeName"] == "wanted"
            assert "pv.kubernetes.io/bound-by-controller" not in claim["metadata"]["annotations"]
            vol = await env.get_pv("wanted")
            assert vol["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
            # A volume reserved for a claim (claimRef without uid) goes to that claim only.
            await env.c.create(PVS, None, pv("reserved", "1Gi", claimRef={"namespace": "default", "name": "mine"}))
            await env.wait_pv_phase("reserved", "Available")
            await env.c.create(PVCS, "default", pvc("mine", "1Gi"))
            assert (await env.wait_pvc_phase("mine", "Bound"))["spec"]["volumeName"] == "reserved"
            vol = await env.get_pv("reserved")
            assert "pv.kubernetes.io/bound-by-controller" not in (vol["metadata"].get("annotations") or {})
            # A named volume that does not satisfy the claim: VolumeMismatch.
            await env.c.create(PVS, None, pv("tiny", "100Mi"))
            await env.c.create(PVCS, "default", pvc("toobig", "1Gi", volumeName="tiny"))
            ev = await env.wait_event("VolumeMismatch")
            assert ev["message"] == 'Cannot bind to requested volume "tiny": requested PV is too small'
            assert (await env.get_pvc("toobig"))["status"]["phase"] == "Pending"
    run(main())


def test_retain_releases_and_lost_claim(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(PVS, None, pv("keep", policy="Retain"))
            await env.c.create(PVCS, "default", pvc("c1"))
            await env.wait_pvc_phase("c1", "Bound")
            await env.c.delete(PVCS, "default", "c1")
            vol = await env.wait_pv_phase("keep", "Released")
            assert vol["spec"]["claimRef"]["name"] == "c1"   # Retain keeps the reference
            # A new claim of the same name does not get the released volume back.
            await env.c.create(PVCS, "default", pvc("c1"))
            await env.wait_pvc_phase("c1", "Pending")
            assert (await env.get_pv("keep"))["status"]["phase"] == "Released"
            # A bound claim whose volume is deleted becomes Lost.
            await env.c.create(PVS, None, pv("gone"))
            await env.c.create(PVCS, "default", pvc("c2", volumeName="gone"))
            await env.wait_pvc_phase("c2", "Bound")
            await env.c.delete(PVS, None, "gone")
            await env.wait_pvc_phase("c2", "Lost")
            ev = await env.wait_event("ClaimLost")
            assert ev["type"] == "Warning"
            assert ev["message"] == "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
    run(main())


def test_delete_policy_deletes_static_volume_object(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            await env.c.create(PVS, None, pv("dv", policy="Delete"))
            await env.c.create(PVCS, "default", pvc("dc"))
            await env.wait_pvc_phase("dc", "Bound")
            await env.c.delete(PVCS, "default", "dc")

            async def gone():
                return await env.get_pv("dv") is None
            await env.until(gone, message="volume deleted")
    run(main())


def test_many_claims_bind_distinct_volumes(tmp_path):
    async def main():
        async with Env(tmp_path) as env:
            for i in range(20):
                await env.c.create(PVS, None, pv(f"v{i}", "1Gi"))
            for i in range(20):
                await env.c.create(PVCS, "default", pvc(f"c{i}", "1Gi"))

            async def all_bound():
                items = (await env.c.list(PVCS, "default"))["items"]
                return len(items) == 20 and all((c.get("status") or {}).get("phase") == "Bound" for c in items)
            await env.until(all_bound, 20, "all claims bound")
            names = [c["spec"]["volumeName"] for c in (await env.c.list(PVCS, "default"))["items"]]
            assert len(set(names)) == 20
    run(main())


# ---- with the scheduler, simulated nodes and the other storage controllers ----------------------


def pod_with_claim(name, claim, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}], **spec}}


def pinned(node):
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}


async def running_on(env, name):
    async def ok():
        p = await env.get_or_none("pods", "default", name)
        return p["spec"]["nodeName"] if p and (p.get("status") or {}).get("phase") == "Running" else None
    return await env.until(ok, 15, f"pod {name} running")


def test_local_path_default_class_provisions_on_the_pods_node(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=2, extra=[LocalPathProvisioner]) as env:
            cls = await env.until(lambda: env.get_or_none(SC, None, "local-path"), message="default class")
            assert cls["provisioner"] == "rancher.io/local-path"
            assert cls["volumeBindingMode"] == "WaitForFirstConsumer" and cls["reclaimPolicy"] == "Delete"
            assert cls["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
            # A claim without a class gets the default class and waits for its first consumer.
            await env.c.create(PVCS, "default", pvc("web", "2Gi", cls=None))
            ev = await env.wait_event("WaitForFirstConsumer")
            assert ev["message"] == "waiting for first consumer to be created before binding"
            claim = await env.get_pvc("web")
            assert claim["spec"]["storageClassName"] == "local-path"
            assert claim["status"]["phase"] == "Pending"
            await env.c.create("pods", "default", pod_with_claim("user", "web"))
            node = await running_on(env, "user")
            claim = await env.wait_pvc_phase("web", "Bound")
            uid = claim["metadata"]["uid"]
            assert claim["spec"]["volumeName"] == f"pvc-{uid}"
            ann = claim["metadata"]["annotations"]
            assert ann["volume.kubernetes.io/selected-node"] == node
            assert ann["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
            assert claim["status"]["capacity"] == {"storage": "2Gi"}
            vol = await env.wait_pv_phase(f"pvc-{uid}", "Bound")
            assert vol["spec"]["hostPath"] == {
                "path": str(tmp_path / "node" / "storage" / f"pvc-{uid}_default_web"), "type": "DirectoryOrCreate"}
            assert vol["spec"]["nodeAffinity"] == pinned(node)
            assert vol["spec"]["capacity"] == {"storage": "2Gi"}
            assert vol["spec"]["accessModes"] == ["ReadWriteOnce"]
            assert vol["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
            assert vol["spec"]["storageClassName"] == "local-path"
            assert vol["spec"]["claimRef"]["uid"] == uid
            assert vol["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
            for reason, message in (
                    ("ExternalProvisioning", "Waiting for a volume to be created either by the external provisioner "
                     "'rancher.io/local-path' or manually by the system administrator. If volume creation is "
                     "delayed, please verify that the provisioner is running and correctly registered."),
                    ("Provisioning", 'External provisioner is provisioning volume for claim "default/web"'),
                    ("ProvisioningSucceeded", f"Successfully provisioned volume pvc-{uid}")):
                assert (await env.wait_event(reason))["message"] == message
            # Reclaim policy Delete: the claim goes, a helper pod cleans the node, the volume goes.
            await env.c.delete("pods", "default", "user")
            await env.c.delete(PVCS, "default", "web")

            async def gone():
                return await env.get_pv(f"pvc-{uid}") is None
            await env.until(gone, 15, "provisioned volume deleted")
    run(main())


def test_helper_pod_and_node_paths():
    vol = {"metadata": {"name": "pvc-1"}, "spec": {"capacity": {"storage": "1Gi"}, "volumeMode": "Filesystem"}}
    pod = helper_pod(vol, "n1", "/data/storage/pvc-1_default_c")
    assert pod["metadata"]["name"] == "helper-pod-delete-pvc-1" and pod["metadata"]["namespace"] == "kube-system"
    assert pod["spec"]["nodeName"] == "n1" and pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["volumes"][0]["hostPath"] == {"path": "/data/storage", "type": "DirectoryOrCreate"}
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env == {"VOL_DIR": "/data/storage/pvc-1_default_c", "VOL_MODE": "Filesystem",
                   "VOL_SIZE_BYTES": str(1024 ** 3)}
    cfg = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["/opt/lp"]},
                           {"node": "n2", "paths": ["/mnt/disk"]}]}
    assert node_path(cfg, "n2", "/x") == "/mnt/disk"
    assert node_path(cfg, "n1", "/x") == "/opt/lp"
    assert node_path(None, "n1", "/x") == "/x"


def test_wait_for_first_consumer_static_volume_follows_the_scheduler(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=3) as env:
            await env.c.create(SC, None, sc("local-disks", mode="WaitForFirstConsumer"))
            await env.c.create(PVS, None, pv("disk-on-2", "5Gi", cls="local-disks",
                                             source={"local": {"path": "/mnt/disk"}}, nodeAffinity=pinned("sim-2")))
            await env.wait_pv_phase("disk-on-2", "Available")
            await env.c.create(PVCS, "default", pvc("db", "1Gi", cls="local-disks"))
            await env.wait_event("WaitForFirstConsumer")
            assert (await env.get_pvc("db"))["status"]["phase"] == "Pending"
            assert "claimRef" not in (await env.get_pv("disk-on-2"))["spec"]
            # The scheduler picks the volume's node, pre-binds the volume; the controller binds.
            await env.c.create("pods", "default", pod_with_claim("db-0", "db"))
            assert await running_on(env, "db-0") == "sim-2"
            claim = await env.wait_pvc_phase("db", "Bound")
            assert claim["spec"]["volumeName"] == "disk-on-2"
            vol = await env.wait_pv_phase("disk-on-2", "Bound")
            assert vol["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    run(main())


def test_recycle_makes_the_volume_available_again(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=1) as env:
            await env.c.create(PVS, None, pv("shared", "10Gi", ("ReadWriteMany",), policy="Recycle",
                                             nodeAffinity=pinned("sim-0")))
            await env.c.create(PVCS, "default", pvc("c", "2Gi", ("ReadWriteMany",)))
            await env.wait_pvc_phase("c", "Bound")
            await env.c.delete(PVCS, "default", "c")
            vol = await env.wait_pv_phase("shared", "Available", 15)
            assert "claimRef" not in vol["spec"]
            assert "pv.kubernetes.io/bound-by-controller" not in (vol["metadata"].get("annotations") or {})
            ev = await env.wait_event("VolumeRecycled")
            assert ev["message"] == "Volume recycled" and ev["involvedObject"]["kind"] == "PersistentVolume"

            async def no_recycler():
                return await env.get_or_none("pods", "default", "recycler-for-shared") is None
            await env.until(no_recycler, message="recycler pod removed")
            # ... and serves the next claim.
            await env.c.create(PVCS, "default", pvc("next", "1Gi", ("ReadWriteMany",)))
            assert (await env.wait_pvc_phase("next", "Bound"))["spec"]["volumeName"] == "shared"
    run(main())


def test_recycle_fails_when_the_node_cannot_mount(tmp_path):
    async def main():
        # No node runs the recycler pod: the test plays the kubelet that cannot mount NFS.
        async with Env(tmp_path) as env:
            await env.c.create(PVS, None, pv("nfs", "1Gi", policy="Recycle",
                                             source={"nfs": {"server": "127.0.0.1", "path": "/export"}}))
            await env.c.create(PVCS, "default", pvc("c", "1Gi"))
            await env.wait_pvc_phase("c", "Bound")
            await env.c.delete(PVCS, "default", "c")
            pod = await env.until(lambda: env.get_or_none("pods", "default", "recycler-for-nfs"),
                                  message="recycler pod")
            assert pod["spec"]["volumes"][0]["nfs"] == {"server": "127.0.0.1", "path": "/export"}
            assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"] == 300
            why = ('MountVolume.SetUp failed for volume "vol" : mount failed: mount.nfs is not installed on this '
                   'node (install nfs-common)')
            await env.c.create("events", "default", {
                "metadata": {"name": "recycler-for-nfs.1"}, "type": "Warning", "reason": "FailedMount",
                "message": why, "involvedObject": {"kind": "Pod", "namespace": "default",
                                                   "name": "recycler-for-nfs", "uid": pod["metadata"]["uid"]}})
            vol = await env.wait_pv_phase("nfs", "Failed", 10, tick=1.0)
            assert vol["status"]["message"] == f"Recycle failed: {why}"
            ev = await env.wait_event("VolumeFailedRecycle")
            assert ev["type"] == "Warning" and ev["message"] == f"Recycle failed: {why}"
            # A volume kind without a recycler fails at once.
            await env.c.create(PVS, None, pv("odd", "1Gi", policy="Recycle", cls="odd",
                                             source={"iscsi": {"targetPortal": "127.0.0.1:3260",
                                                               "iqn": "iqn.2001-04.com.example:x", "lun": 0}}))
            await env.c.create(PVCS, "default", pvc("c2", "1Gi", cls="odd"))
            await env.wait_pvc_phase("c2", "Bound")
            await env.c.delete(PVCS, "default", "c2")
            vol = await env.wait_pv_phase("odd", "Failed")
            assert vol["status"]["message"] == "No recycler plugin found for the volume!"
    run(main())


def test_protection_finalizers(tmp_path):
    async def main():
        async with Env(tmp_path, nodes=1, extra=[StorageProtectionController]) as env:
            await env.c.create(PVS, None, pv("pv1"))
            await env.c.create(PVCS, "default", pvc("c1"))
            await env.wait_pvc_phase("c1", "Bound")

            async def finalized(res, ns, name, fin):
                obj = await env.get_or_none(res, ns, name)
                return obj if obj and fin in (obj["metadata"].get("finalizers") or ()) else None
            await env.until(lambda: finalized(PVCS, "default", "c1", "kubernetes.io/pvc-protection"))
            await env.until(lambda: finalized(PVS, None, "pv1", "kubernetes.io/pv-protection"))
            await env.c.create("pods", "default", pod_with_claim("user", "c1"))
            await running_on(env, "user")
            # In use: deleting the claim leaves it Terminating; so does deleting its bound volume.
            await env.c.delete(PVCS, "default", "c1")
            await env.c.delete(PVS, None, "pv1")
            for _ in range(20):
                await asyncio.sleep(0.02)
            claim = await env.get_pvc("c1")
            assert claim is not None and claim["metadata"].get("deletionTimestamp")
            assert (await env.get_pv("pv1"))["metadata"].get("deletionTimestamp")
            # The pod goes: the claim goes, the volume is released and goes too.
            await env.c.delete("pods", "default", "user")

            async def both_gone():
                return await env.get_pvc("c1") is None and await env.get_pv("pv1") is None
            await env.until(both_gone, 15, "claim and volume deleted")
    run(main())


def test_empty_class_stays_empty_and_missing_class_fails_provisioning(tmp_path):
    async def main():
        async with Env(tmp_path, extra=[LocalPathProvisioner]) as env:
            await env.until(lambda: env.get_or_none(SC, None, "local-path"), message="default class")
            # storageClassName "" asks for a class-less volume: the default class is not applied.
            await env.c.create(PVCS, "default", pvc("explicitly-none", cls=""))
            await env.wait_event("FailedBinding")
            assert (await env.get_pvc("explicitly-none"))["spec"]["storageClassName"] == ""
            # A class that does not exist, and no volume: ProvisioningFailed, as upstream says it.
            await env.c.create(PVCS, "default", pvc("seedlike", cls="manual"))
            ev = await env.wait_event("ProvisioningFailed")
            assert ev["type"] == "Warning" and ev["message"] == 'storageclass.storage.k8s.io "manual" not found'
            # Once a volume of that class appears, the claim binds.
            await env.c.create(PVS, None, pv("manual-1", cls="manual"))
            await env.wait_pvc_phase("seedlike", "Bound")
    run(main())


def test_provisioning_for_a_missing_node_gives_the_claim_back_to_the_scheduler(tmp_path):
    async def main():
        async with Env(tmp_path, extra=[LocalPathProvisioner]) as env:
            await env.until(lambda: env.get_or_none(SC, None, "local-path"), message="default class")
            claim = pvc("lost", cls="local-path")
            claim["metadata"]["annotations"] = {"volume.kubernetes.io/selected-node": "ghost"}
            await env.c.create(PVCS, "default", claim)
            ev = await env.wait_event("ProvisioningFailed")
            assert ev["message"] == 'failed to provision volume with StorageClass "local-path": nodes "ghost" not found'

            async def released():
                c = await env.get_pvc("lost")
                return "volume.kubernetes.io/selected-node" not in (c["metadata"].get("annotations") or {})
            await env.until(released, message="selected-node removed")
            assert (await env.get_pvc("lost"))["status"]["phase"] == "Pending"
    run(main())
