"""What happens to a volume after its claim is gone: the reclaim policies Retain, Recycle, Delete.

Why it exists: a Released volume still holds the old claim's data, and the policy says whether
that data stays (Retain), is scrubbed so the volume can serve a new claim (Recycle), or goes with
the volume (Delete). This follows `reclaimVolume`, `recycleVolumeOperation` and
`deleteVolumeOperation` of upstream's PV controller:

* Retain: nothing; the volume stays Released with its claimRef until an administrator acts.
* Recycle: the files are scrubbed by a **recycler pod**, as upstream's recycler does
  (`recycler-for-<pv>` in `default`, restartPolicy Never, an `activeDeadlineSeconds` that grows
  with the volume's size, `VolumeRecycled` "Volume recycled" and the volume Available again with
  its claimRef cleared when the pod succeeds; `VolumeFailedRecycle` "Recycle failed: ..." and
  phase Failed when it fails). A pod, rather than deleting files in this process, because the
  data lives on whichever machine serves the volume: a hostPath or local volume on the node its
  nodeAffinity names (the pod carries that affinity, so an agent on another machine scrubs its own
  disk through its own kubelet, with nothing to configure), an NFS export wherever the pod's node
  mounts it. The pod mounts a hostPath/local volume at the same path it has on the host, so the
  scrub works whether or not the node isolates pods (without isolation mounts are not applied).
  When the node cannot mount the volume (an NFS volume on a node without the NFS client), the
  kubelet reports FailedMount on the pod; upstream would wait for the pod's deadline, here the
  recycle fails at once with that message, so the user reads why straight away on the volume.
  Volumes of other kinds have no recycler: `No recycler plugin found for the volume!`. A failed
  recycle is retried with a back-off (15 s doubling to 5 min), as upstream retries on resync.
  On simulated nodes the recycler pod finishes at once (`pocketkube.dev/simulate-exit-after`);
  real nodes ignore that annotation.
* Delete: a dynamically provisioned volume is left to its provisioner (the local-path
  provisioner deletes the directory, then the volume); any other volume object is deleted and
  its storage left as it is (upstream has deleters only for cloud disks and /tmp hostPaths).
* Any other policy: phase Failed with `VolumeUnknownReclaimPolicy`.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from ...api.errors import ApiError

if TYPE_CHECKING:
    from .controller import PersistentVolumeController

RECYCLER_NAMESPACE = "default"
RECYCLER_PREFIX = "recycler-for-"
RECYCLER_IMAGE = "busybox:1.27"
ANN_RECYCLED_UID = "pocketkube.dev/recycled-volume-uid"
SIMULATE_EXIT_AFTER = "pocketkube.dev/simulate-exit-after"
# kube-controller-manager's --pv-recycler-{minimum-timeout,increment-timeout}-{nfs,hostpath}
TIMEOUTS = {"nfs": (300, 30), "hostPath": (60, 30), "local": (60, 30)}
RETRY_INITIAL = 15.0
RETRY_MAX = 300.0
POLL = 1.0
GI = 1024 ** 3


def recycler_pod_volume(pod: dict) -> str | None:
    """The volume a recycler pod works for, None for any other pod."""
    meta = pod.get("metadata") or {}
    name = meta.get("name") or ""
    if meta.get("namespace") == RECYCLER_NAMESPACE and name.startswith(RECYCLER_PREFIX):
        return name[len(RECYCLER_PREFIX):]
    return None


def recycler_pod(pv: dict, kind: str, size: int) -> dict:
    """NewPersistentVolumeRecyclerPodTemplate, filled in for one volume."""
    spec = pv["spec"]
    if kind == "nfs":
        source = {"nfs": dict(spec["nfs"])}
        path = "/scrub"
    else:
        path = spec[kind]["path"]
        source = {"hostPath": {"path": path, "type": "Directory" if kind == "local" else ""}}
    q = shlex.quote(path)
    minimum, increment = TIMEOUTS[kind]
    pod_spec: dict = {
        "activeDeadlineSeconds": max(minimum, increment * -(-size // GI)),
        "restartPolicy": "Never",
        "volumes": [{"name": "vol", **source}],
        "containers": [{
            "name": "pv-recycler", "image": RECYCLER_IMAGE, "command": ["/bin/sh"],
            "args": ["-c", f'test -e {q} && find {q} -mindepth 1 -delete && test -z "$(ls -A {q})" || exit 1'],
            "volumeMounts": [{"name": "vol", "mountPath": path}],
        }],
    }
    required = ((spec.get("nodeAffinity") or {}).get("required"))
    if required:
        pod_spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": RECYCLER_PREFIX + pv["metadata"]["name"], "namespace": RECYCLER_NAMESPACE,
                         "annotations": {ANN_RECYCLED_UID: pv["metadata"].get("uid") or "",
                                         SIMULATE_EXIT_AFTER: "0s"}},
            "spec": pod_spec}


def _source_kind(pv: dict) -> str | None:
    spec = pv.get("spec") or {}
    for kind in ("hostPath", "local", "nfs"):
        if spec.get(kind):
            return kind
    return None


def is_volume_released(ctrl: "PersistentVolumeController", pv: dict) -> bool:
    """The volume's claim is gone, or exists under a new uid, or is bound elsewhere."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref or not ref.get("uid"):
        return False
    pvc = ctrl.claim(f"{ref.get('namespace')}/{ref.get('name')}")
    if pvc is not None and pvc["metadata"].get("uid") == ref.get("uid"):
        vn = (pvc.get("spec") or {}).get("volumeName")
        return bool(vn) and vn != pv["metadata"]["name"]
    return True


def pods_using(ctrl: "PersistentVolumeController", namespace: str, claim: str) -> list[str]:
    from .controller import pod_claim_names, pod_terminated
    return sorted(f"{namespace}/{p['metadata']['name']}" for p in ctrl.pods.cache.values()
                  if p["metadata"].get("namespace") == namespace and not pod_terminated(p)
                  and claim in pod_claim_names(p))


async def reclaim_volume(ctrl: "PersistentVolumeController", pv: dict) -> None:
    policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy")
    if policy == "Retain":
        return
    if policy == "Recycle":
        await _recycle(ctrl, pv)
    elif policy == "Delete":
        await _delete(ctrl, pv)
    else:
        await ctrl.update_volume_phase_with_event(pv, "Failed", "Warning", "VolumeUnknownReclaimPolicy",
                                                  "Volume has unrecognized PersistentVolumeReclaimPolicy")


def _backing_off(ctrl: "PersistentVolumeController", pv: dict) -> bool:
    state = ctrl.retry_after.get(pv["metadata"].get("uid") or "")
    if state is None:
        return False
    wait = state[0] - ctrl.clock.now()
    if wait > 0:
        ctrl.queue.add_after("volume:" + pv["metadata"]["name"], wait)
        return True
    return False


def _failed(ctrl: "PersistentVolumeController", pv: dict) -> None:
    uid = pv["metadata"].get("uid") or ""
    delay = min(RETRY_MAX, ctrl.retry_after[uid][1] * 2) if uid in ctrl.retry_after else RETRY_INITIAL
    ctrl.retry_after[uid] = (ctrl.clock.now() + delay, delay)
    ctrl.queue.add_after("volume:" + pv["metadata"]["name"], delay)


async def _recycle(ctrl: "PersistentVolumeController", pv: dict) -> None:
    name = pv["metadata"]["name"]
    pod = ctrl.pods.get(f"{RECYCLER_NAMESPACE}/{RECYCLER_PREFIX}{name}")
    if pod is None and _backing_off(ctrl, pv):
        return
    if not is_volume_released(ctrl, pv):
        return
    ref = pv["spec"]["claimRef"]
    used = pods_using(ctrl, ref.get("namespace"), ref.get("name"))
    if used and ctrl.claim(f"{ref.get('namespace')}/{ref.get('name')}") is None:
        ctrl.recorder.event(pv, "Normal", "VolumeFailedRecycle", "VolumeFailedRecycle",
                            f"Volume is used by pods: {','.join(used)}")
        return
    kind = _source_kind(pv)
    if kind is None:
        await ctrl.update_volume_phase_with_event(pv, "Failed", "Warning", "VolumeFailedRecycle",
                                                  "No recycler plugin found for the volume!")
        _failed(ctrl, pv)
        return
    if pod is None:
        from .index import storage_capacity
        try:
            await ctrl.client.create("pods", RECYCLER_NAMESPACE, recycler_pod(pv, kind, storage_capacity(pv)))
        except ApiError as e:
            if e.code != 409:
                raise
        return
    meta = pod["metadata"]
    if meta.get("deletionTimestamp"):
        ctrl.queue.add_after("volume:" + name, POLL)  # an earlier recycler is still going away
        return
    if (meta.get("annotations") or {}).get(ANN_RECYCLED_UID) != pv["metadata"].get("uid"):
        await delete_pod(ctrl.client, pod)  # left over from a volume of the same name
        return
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        await delete_pod(ctrl.client, pod)
        ctrl.retry_after.pop(pv["metadata"].get("uid") or "", None)
        ctrl.recorder.event(pv, "Normal", "VolumeRecycled", "VolumeRecycled", "Volume recycled")
        await ctrl.unbind_volume(pv)
        return
    if phase == "Failed":
        msg = (pod.get("status") or {}).get("message") or ""
        await _recycle_failed(ctrl, pv, pod, f"pod failed, pod.Status.Message {msg}.")
        return
    mount_error = await _failed_mount(ctrl, pod)
    if mount_error:
        await _recycle_failed(ctrl, pv, pod, mount_error)
        return
    ctrl.queue.add_after("volume:" + name, POLL)


async def _recycle_failed(ctrl: "PersistentVolumeController", pv: dict, pod: dict, why: str) -> None:
    await delete_pod(ctrl.client, pod)
    message = f"Recycle failed: {why}"
    if (pv.get("status") or {}).get("phase") == "Failed":
        ctrl.recorder.event(pv, "Warning", "VolumeFailedRecycle", "VolumeFailedRecycle", message)
    else:
        await ctrl.update_volume_phase_with_event(pv, "Failed", "Warning", "VolumeFailedRecycle", message)
    _failed(ctrl, pv)


async def _failed_mount(ctrl: "PersistentVolumeController", pod: dict) -> str | None:
    """The kubelet's FailedMount message for the recycler pod, if it has reported one."""
    uid = pod["metadata"].get("uid")
    try:
        events = await ctrl.client.list("events", RECYCLER_NAMESPACE,
                                        field_selector=f"involvedObject.uid={uid},reason=FailedMount")
    except ApiError:
        return None
    for ev in events.get("items") or ():
        if ev.get("message"):
            return ev["message"]
    return None


async def delete_pod(client, pod: dict) -> None:
    meta = pod["metadata"]
    try:
        await client.delete("pods", meta["namespace"], meta["name"], grace_period_seconds=0,
                                 preconditions={"uid": meta.get("uid")})
    except ApiError as e:
        if e.code not in (404, 409):
            raise


async def _delete(ctrl: "PersistentVolumeController", pv: dict) -> None:
    from .controller import ANN_DYNAMICALLY_PROVISIONED
    if pv["metadata"].get("deletionTimestamp") or not is_volume_released(ctrl, pv):
        return
    prov = ((pv.get("metadata") or {}).get("annotations") or {}).get(ANN_DYNAMICALLY_PROVISIONED)
    if prov and not prov.startswith("kubernetes.io/"):
        return  # an external provisioner deletes what it provisioned
    await delete_volume(ctrl.client, pv)


async def delete_volume(client, pv: dict) -> None:
    """Delete this volume object (not another one created since under its name)."""
    try:
        await client.delete("persistentvolumes", None, pv["metadata"]["name"],
                            preconditions={"uid": pv["metadata"].get("uid")})
    except ApiError as e:
        if e.code not in (404, 409):
            raise
