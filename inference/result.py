"""A dataset step's verdict: one JSON line on stdout, and the key of the run's result ConfigMap.

The controller starts each dataset step (probe, review, finalize, discard) as a
one-shot Job in the run's namespace and reads the verdict from the key
``$AUTOLABEL_RESULT_KEY`` of ConfigMap ``$AUTOLABEL_RESULT_CONFIG_MAP`` (the run's
namespace). The pod's ServiceAccount needs only ``patch`` on it. Without the
variables (a local run) the verdict goes to stdout only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from contract.env import RESULT_CONFIG_MAP_ENV as RESULT_CONFIG_MAP_ENV
from contract.env import RESULT_KEY_ENV as RESULT_KEY_ENV

LOG = logging.getLogger(__name__)


def core_api() -> Any:
    """The Kubernetes API with the pod's own credentials (or the kubeconfig, locally)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.CoreV1Api()


def publish(namespace: str, verdict: dict[str, Any]) -> None:
    """Prints the verdict, then writes it into the result ConfigMap (retried: the controller waits on it)."""
    text = json.dumps(verdict, separators=(",", ":"))
    print(text, flush=True)
    name, key = os.environ.get(RESULT_CONFIG_MAP_ENV), os.environ.get(RESULT_KEY_ENV)
    if not name or not key:
        return
    api = core_api()
    for attempt in range(5):
        try:
            api.patch_namespaced_config_map(name, namespace, {"data": {key: text}})
            return
        except Exception as error:
            if attempt == 4:
                raise
            LOG.warning("writing the verdict to configmap %s/%s failed: %s", namespace, name, error)
            time.sleep(1 + attempt)


def list_config_maps(namespace: str, selector: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(name, labels, data) of the namespace's ConfigMaps matching a label selector."""
    items = core_api().list_namespaced_config_map(namespace, label_selector=selector).items
    return [(cm.metadata.name, dict(cm.metadata.labels or {}), dict(cm.data or {})) for cm in items]


def read_config_map(namespace: str, name: str) -> dict[str, str] | None:
    """A ConfigMap's data, None when it does not exist."""
    from kubernetes.client.rest import ApiException

    try:
        return dict(core_api().read_namespaced_config_map(name, namespace).data or {})
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def write_key(namespace: str, name: str, key: str, text: str) -> None:
    core_api().patch_namespaced_config_map(name, namespace, {"data": {key: text}})
