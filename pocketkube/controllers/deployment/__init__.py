"""The Deployment controller (kube-controller-manager's `deployment` controller).

A Deployment manages ReplicaSets named `<deployment>-<pod-template-hash>`, one per pod template
it has had, and moves pods from the old ones to the new one with its strategy (RollingUpdate or
Recreate), keeping a history of revisions for `kubectl rollout history|undo`. The package is
laid out as upstream's `pkg/controller/deployment`, one concern per module:

* `controller` - informers, handlers, adoption, and the order of a sync;
* `sync`       - the new ReplicaSet and its revision, scaling events, history cleanup, status;
* `rolling`, `recreate` - the two strategies;
* `progress`   - the Progressing condition and the progress deadline;
* `rollback`   - the deprecated server-side rollback annotation;
* `util`       - the arithmetic and bookkeeping they share; `hash` - the pod-template-hash.

Construct it as any controller: `DeploymentController(client, clock, shared_informers)`, or
let `ControllerManager(client, clock, [ReplicaSetController, DeploymentController])` do it.
"""

from .controller import DeploymentController

__all__ = ["DeploymentController"]
