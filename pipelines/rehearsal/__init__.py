"""The rehearsal: the cluster's rendered pods run with `podman kube play` on this machine, wired to the local
servers, with the few test-only changes listed in `changes.py`."""
