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

RESULT_CONFIG_MAP_ENV = "AUTOLABEL_RESULT_CONFIG_MAP"
RESULT_KEY_ENV = "AUTOLABEL_RESULT_KEY"
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
