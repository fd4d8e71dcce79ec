"""Persistent storage controllers: the binder, reclaim policies, the local-path provisioner and
the claim/volume protection finalizers.

Laid out after upstream's `pkg/controller/volume/` (and k3s's bundled local-path provisioner),
one concern per module:

* `index`       - which volume a claim gets (access-mode groups, smallest fit, pre-binding);
* `controller`  - the PersistentVolume controller: binding, phases, events, default class;
* `reclaim`     - Retain, Recycle (a recycler pod scrubs the files) and Delete;
* `provisioner` - the `local-path` StorageClass and its provisioner (`rancher.io/local-path`);
* `protection`  - the `kubernetes.io/pvc-protection` and `kubernetes.io/pv-protection` finalizers.

Each controller class is constructed as any controller (`Cls(client, clock, shared_informers)`)
and listed in `pocketkube.components.CONTROLLERS`.
"""

from .controller import PersistentVolumeController

__all__ = ["PersistentVolumeController"]
