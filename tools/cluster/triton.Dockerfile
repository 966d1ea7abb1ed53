# syntax=docker/dockerfile:1
# A CPU Triton Inference Server image for the sidecar mode on the real test node
# (tools/cluster/tritonimage.py builds it with buildah; the context is the repository root).
#
# It is laid out like NVIDIA's tritonserver images where the sidecar relies on it:
# `tritonserver` on PATH, the python backend under the default /opt/tritonserver/backends,
# user `triton-server` (1000), HOME=/tmp; the demo models that need no torch under /models.
# The server is the one bundled in the nvidia-pytriton wheel, so no NVIDIA registry is needed.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE}
# Behind a TLS-intercepting proxy: a CA bundle path for pip during the build (not kept in the image).
ARG PIP_CERT=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBIAN_FRONTEND=noninteractive

# The python backend's stub embeds libpython3.11.so, which Debian ships apart from the interpreter
# (the same version as the base's python3.11).
RUN apt-get update \
    && apt-get install -y --no-install-recommends "libpython3.11=$(dpkg-query -W -f='${Version}' python3.11)" \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && groupadd --gid 1000 triton-server \
    && useradd --uid 1000 --gid 1000 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin triton-server

# The models' Python: the stub finds it as `python3` on PATH (the venv's bin first).
RUN python -m venv /opt/tritonserver/venv
ENV PATH=/opt/tritonserver/venv/bin:/opt/tritonserver/bin:$PATH
COPY requirements/lock.txt /tmp/lock.txt
# Two of mediapipe's requirements a server does not use: opencv-contrib-python, whose cv2 needs libGL
# and X11 (the headless build of the same OpenCV replaces it; mediapipe uses only cv2's array
# functions), and jax (500 MB with jaxlib and scipy; only mediapipe's LLM weight converter imports it).
RUN pip install -c /tmp/lock.txt nvidia-pytriton numpy Pillow mediapipe onnxruntime \
    && pip uninstall -y opencv-contrib-python jax jaxlib scipy ml_dtypes opt_einsum \
    && pip install --no-deps -c /tmp/lock.txt opencv-python-headless \
    && rm /tmp/lock.txt \
    && python -c "import mediapipe, onnxruntime, PIL, numpy; mediapipe.solutions.face_detection.FaceDetection(model_selection=1).close()"

# tritonserver's default directories, from the wheel's tree; the stub that matches this Python.
RUN set -eu; \
    site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
    version="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; \
    tree="$site/pytriton/tritonserver"; \
    mkdir -p /opt/tritonserver/bin /opt/tritonserver/backends/python; \
    ln -s "$tree/bin/tritonserver" /opt/tritonserver/bin/tritonserver; \
    ln -s "$tree/caches" /opt/tritonserver/caches; \
    ln -s "$site/nvidia_pytriton.libs" /opt/tritonserver/lib; \
    cp "$tree/backends/python/libtriton_python.so" "$tree/backends/python/triton_python_backend_utils.py" \
       "$tree/python_backend_stubs/$version/triton_python_backend_stub" /opt/tritonserver/backends/python/; \
    libraries="$(LD_LIBRARY_PATH=/opt/tritonserver/lib ldd /opt/tritonserver/bin/tritonserver \
        /opt/tritonserver/backends/python/libtriton_python.so /opt/tritonserver/backends/python/triton_python_backend_stub)"; \
    case "$libraries" in *"not found"*) echo "$libraries"; exit 1;; esac
ENV LD_LIBRARY_PATH=/opt/tritonserver/lib \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1

# The demo models that need only numpy, Pillow, mediapipe (tests/unit/test_triton_image.py checks
# the list). Out: efficientnet_lite0, its _encoded and _onnx forms and face_detector_mtcnn (torch),
# digits_classifier (scikit-learn).
COPY models/face_detector/ /models/face_detector/
COPY models/selfie_segmentation/ /models/selfie_segmentation/
COPY models/light_classifier/ /models/light_classifier/
COPY models/light_classifier_encoded/ /models/light_classifier_encoded/
COPY models/image_decoder/ /models/image_decoder/
COPY models/square_detector/ /models/square_detector/
COPY models/square_detector_efficient_nms/ /models/square_detector_efficient_nms/
COPY models/square_detector_yolov5/ /models/square_detector_yolov5/
COPY models/square_detector_yolov8/ /models/square_detector_yolov8/
COPY models/square_instances/ /models/square_instances/
COPY models/square_segmenter/ /models/square_segmenter/
COPY models/zero_shot_colours/ /models/zero_shot_colours/

LABEL org.opencontainers.image.title="autolabel-tritonserver" \
      org.opencontainers.image.description="CPU Triton (nvidia-pytriton's tritonserver, python backend) with the demo models"
WORKDIR /tmp
USER 1000:1000
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/models"]
