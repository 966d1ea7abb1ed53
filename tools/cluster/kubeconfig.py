"""Kubeconfigs that authenticate with a ServiceAccount token against the local control plane."""

from __future__ import annotations

from pathlib import Path

import yaml


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path, namespace: str | None = None) -> Path:
    """Writes a kubeconfig for the admin kubeconfig's cluster that authenticates with `token`."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context: dict[str, str] = {"cluster": "local", "user": "token"}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "token",
        "clusters": [{"name": "local", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": context}],
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path
