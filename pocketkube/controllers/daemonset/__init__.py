"""The DaemonSet controller, one file per concern as upstream's pkg/controller/daemon:
`daemon_controller.py` (handlers, eligibility, pod creation and deletion, status), `update.py`
(revision history and RollingUpdate), `util/daemonset_util.py` (daemon pod tolerations, labels,
node pinning, surge and unavailability arithmetic)."""

from .daemon_controller import DaemonSetController

__all__ = ["DaemonSetController"]
