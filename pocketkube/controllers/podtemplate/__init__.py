"""Names derived from a pod template, shared by the Deployment, DaemonSet and StatefulSet
controllers: the pod-template-hash (hash.py, printed as Go prints the struct by gostruct.py
from the Go types in gotypes.py)."""
