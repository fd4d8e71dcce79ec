"""The StatefulSet controller (kube-controller-manager's `statefulset` controller).

A StatefulSet runs pods with a stable identity: `<set>-<ordinal>`, the same hostname and claims
every time the pod is made again, created in order and removed in reverse order (OrderedReady)
or all at once (Parallel), and updated from the highest ordinal down with RollingUpdate (with a
partition and maxUnavailable) or by the user with OnDelete. The package is laid out as
upstream's `pkg/controller/statefulset`, one concern per module:

* `controller` - informers, handlers, adoption of pods and revisions (stateful_set.go);
* `control`    - one pass over a set: revisions, pods, rolling update, status (stateful_set_control.go);
* `podcontrol` - creating, repairing and deleting pods and claims, with events (stateful_pod_control.go);
* `status`     - writing the status (stateful_set_status_updater.go);
* `utils`      - identity, storage, health and claim-retention rules (stateful_set_utils.go).

Revisions are kept with the helpers shared with DaemonSets in `controllers/history.py`.
"""

from .controller import StatefulSetController

__all__ = ["StatefulSetController"]
