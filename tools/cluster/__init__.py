"""The local Kubernetes control plane that tests, CI and the demo stand on (see harness.py)."""
