"""The Triton image (tools/cluster/tritonimage.py) as the controller's native sidecar, on the real node.

The sidecar container is the one `worker_job` builds for a run in sidecar mode
(`tritonserver` with the run's ports, user 1000, the startup probe on
/v2/health/ready), unchanged but for the image; a busybox container stands in for
the worker, which the kubelet starts only once the sidecar's startup probe passes.
From the test process, tritonclient (gRPC) calls the pod IP: every model the image
bundles is loaded, and face_detector finds the face in a real photo, where
MediaPipe run here finds it, and no face in a photo without one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from controller.api import parse_spec
from controller.builders import restricted_pod_security_context, restricted_security_context, worker_job
from tests.fixtures.cluster import ClusterHandle
from tests.waiting import wait_until
from tools.cluster.nodeimages import LocalImage, busybox_image
from tools.cluster.realnode import real_node_selector
from tools.cluster.tritonimage import bundled_models
from tools.images import skimage_rgb

pytestmark = [pytest.mark.integration, pytest.mark.realnode]
GRPC_PORT = 8001
SIDE = 320  # face_detector's input is 320 x 320 RGB
MIN_CONFIDENCE = 0.3  # face_detector's config.pbtxt default


@pytest.fixture
def namespace(real_cluster: ClusterHandle) -> Iterator[str]:
    name = f"triton-{uuid.uuid4().hex[:8]}"
    real_cluster.kubectl("create", "namespace", name)
    real_cluster.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    real_cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    yield name
    real_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def sidecar_container(image_ref: str) -> dict[str, Any]:
    """The Triton container the controller puts in a sidecar-mode run's worker pods."""
    spec = parse_spec(
        {
            "task": "detection",
            "dataset": {"name": "faces", "target": {"all": True}, "databaseSecretRef": {"name": "db"}},
            "model": {
                "name": "face_detector",
                "outputFormat": "boxes",
                "sidecar": {"image": image_ref, "modelRepository": "/models", "grpcPort": GRPC_PORT},
            },
            "labelField": "faces",
        }
    )
    metadata = {"name": "faces", "namespace": "default", "uid": uuid.uuid4().hex, "generation": 1}
    job = worker_job(metadata, spec, default_image="unused", service_account="default", command=["true"])
    [container] = job["spec"]["template"]["spec"]["initContainers"]
    return dict(container)


def sidecar_pod(image_ref: str) -> dict[str, Any]:
    ready_url = f"http://127.0.0.1:{GRPC_PORT + 1}/v2/health/ready"
    # The worker's view: the sidecar on localhost, ready before this container starts.
    script = (
        f"wget -q -O /dev/null {ready_url} && echo sidecar ready on localhost; "
        "trap 'exit 0' TERM; sleep 2147483647 & wait"
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "worker"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "nodeSelector": real_node_selector(),
            "securityContext": restricted_pod_security_context(),
            "initContainers": [sidecar_container(image_ref)],
            "containers": [
                {
                    "name": "worker",
                    "image": busybox_image().ref,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    "securityContext": restricted_security_context(read_only_root=True, run_as_user=65532),
                }
            ],
        },
    }


def ready_pod(cluster: ClusterHandle, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        pod = json.loads(cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)
        if pod["status"].get("phase") in {"Succeeded", "Failed"}:
            raise AssertionError(f"pod {name} ended: {pod['status']}")
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        return pod if conditions.get("Ready") == "True" else None

    try:
        result: dict[str, Any] = wait_until(f"pod {name} Ready", ready, timeout=timeout)
    except AssertionError as error:
        logs = cluster.kubectl("logs", name, "-n", namespace, "-c", "triton", "--tail=40", check=False)
        raise AssertionError(f"{error}\ntritonserver log:\n{logs.stdout}{logs.stderr}") from None
    return result


def photo(name: str) -> np.ndarray[Any, Any]:
    """A real photo from skimage, resized to the detector's input."""
    pixels = Image.fromarray(skimage_rgb(name)).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    return np.asarray(pixels, dtype=np.uint8)


def mediapipe_faces(images: np.ndarray[Any, Any]) -> list[list[tuple[float, float, float, float, float]]]:
    """x1, y1, x2, y2, score per face per image, as face_detector's model.py computes them, run here."""
    import mediapipe as mp

    found = []
    with mp.solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=MIN_CONFIDENCE
    ) as detector:
        for image in images:
            faces = []
            for detection in detector.process(np.ascontiguousarray(image)).detections or []:
                box = detection.location_data.relative_bounding_box
                x1, y1 = max(0.0, box.xmin), max(0.0, box.ymin)
                x2, y2 = min(1.0, box.xmin + box.width), min(1.0, box.ymin + box.height)
                if x2 > x1 and y2 > y1:
                    faces.append((x1, y1, x2, y2, float(detection.score[0])))
            found.append(faces)
    return found


def test_triton_image_serves_face_detector_as_the_sidecar(
    real_cluster: ClusterHandle, sidecar_image: LocalImage, namespace: str
) -> None:
    import tritonclient.grpc as grpcclient

    manifest = sidecar_pod(sidecar_image.ref)
    [triton] = manifest["spec"]["initContainers"]
    assert triton["command"] == ["tritonserver"] and triton["restartPolicy"] == "Always"
    assert triton["securityContext"]["runAsUser"] == 1000
    real_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    pod = ready_pod(real_cluster, namespace, "worker", timeout=480)
    assert pod["spec"]["nodeName"] == "real-node-0"
    [sidecar] = pod["status"]["initContainerStatuses"]
    assert sidecar["started"] is True and "running" in sidecar["state"], sidecar
    assert "sidecar ready on localhost" in real_cluster.kubectl("logs", "worker", "-n", namespace).stdout
    uid = real_cluster.kubectl("exec", "worker", "-n", namespace, "-c", "triton", "--", "id", "-u").stdout
    assert uid.strip() == "1000"

    client = grpcclient.InferenceServerClient(f"{pod['status']['podIP']}:{GRPC_PORT}")
    try:
        assert client.is_server_ready()
        states = {m.name: m.state for m in client.get_model_repository_index().models}
        assert states == dict.fromkeys(bundled_models(), "READY")

        images = np.stack([photo("astronaut"), photo("coffee")])
        pixels = grpcclient.InferInput("IMAGE", list(images.shape), "UINT8")
        pixels.set_data_from_numpy(images)
        outputs = [grpcclient.InferRequestedOutput(n) for n in ("BOXES", "SCORES", "LABELS")]
        result = client.infer("face_detector", [pixels], outputs=outputs)
    finally:
        client.close()
    boxes, scores, labels = (result.as_numpy(n) for n in ("BOXES", "SCORES", "LABELS"))
    assert boxes is not None and scores is not None and labels is not None

    # The astronaut photo: one face, in the upper middle of the picture; the coffee cup: none.
    assert labels[0].tolist().count(0) == 1 and scores[0][0] > 0.8
    x1, y1, x2, y2 = boxes[0][0]
    assert 0.3 < (x1 + x2) / 2 < 0.6 and (y1 + y2) / 2 < 0.5 and 0.1 < x2 - x1 < 0.5
    assert labels[1].tolist().count(0) == 0
    # The same numbers as MediaPipe computes in this process (same wheel version, same pixels).
    for row, faces in enumerate(mediapipe_faces(images)):
        count = len(faces)
        assert labels[row].tolist().count(0) == count
        if count:
            served = np.column_stack([boxes[row][:count], scores[row][:count]])
            np.testing.assert_allclose(served, np.array(faces), atol=1e-3)
