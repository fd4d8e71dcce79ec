"""kube-controller-manager's controllers, one module (or package) each, on the shared pieces in `base.py`."""
