"""The Kubernetes side of the panel, used only when the App has credentials (a kubeconfig or in-cluster).

Review never needs them. With them, "Approve" sets ``spec.finalize`` on the
AutoLabelRun itself (as ``autolabel finalize`` does) and a new run's manifest
is applied; without them the panel records the finalize request in the dataset
and shows the manifest to copy into Git.
"""

from __future__ import annotations

import os
from typing import Any

from controller.api import GROUP, PLURAL, VERSION

KUBECONFIG_ENV = "AUTOLABEL_APP_KUBECONFIG"
"""Kubeconfig of the App's user; default ``$KUBECONFIG`` or ``~/.kube/config`` (or in-cluster)."""


class KubeError(Exception):
    """The Kubernetes call failed; the message names the server and the cause."""


def runs_api() -> tuple[Any, str] | None:
    """(CustomObjectsApi, server) when the App has Kubernetes credentials, else None."""
    try:
        from kubernetes import client, config
    except ImportError:
        return None
    configuration = client.Configuration()
    path = (
        os.environ.get(KUBECONFIG_ENV) or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    )
    try:
        if os.path.isfile(path):
            config.load_kube_config(config_file=path, client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except Exception:
        return None
    configuration.retries = False
    return client.CustomObjectsApi(client.ApiClient(configuration)), str(configuration.host)


def _call(server: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    from kubernetes.client.rest import ApiException

    try:
        return function(*args, _request_timeout=(5, 30), **kwargs)
    except ApiException as error:
        raise KubeError(f"the server {server} answered {error.status} {error.reason}") from None
    except Exception as error:  # urllib3 connection errors
        raise KubeError(f"cannot reach the Kubernetes API server {server}: {type(error).__name__}") from None


def set_finalize(api: Any, server: str, namespace: str, name: str, uid: str) -> None:
    """``spec.finalize: true`` on the run, only if it is still the run the dataset knows (same uid)."""
    run = _call(server, api.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    if run["metadata"].get("uid") != uid:
        raise KubeError(
            f"autolabelrun {namespace}/{name} is another run now (uid {run['metadata'].get('uid')})"
        )
    body = {"metadata": {"resourceVersion": run["metadata"]["resourceVersion"]}, "spec": {"finalize": True}}
    _call(server, api.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name, body)


def apply_run(api: Any, server: str, manifest: dict[str, Any]) -> None:
    """Creates the AutoLabelRun of `manifest`."""
    namespace = manifest["metadata"]["namespace"]
    _call(server, api.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, manifest)
