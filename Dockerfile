# syntax=docker/dockerfile:1
# autolabel-operator: one image for the controller (autolabel-controller), the worker Jobs
# (autolabel-worker) and the review CLI (autolabel). Triton itself is not in it: workers call an
# existing Triton endpoint or a Triton sidecar (spec.model.sidecar.image).
#
#   docker build -t ghcr.io/autolabel/autolabel-operator:0.1.0 .
#
# Dependencies are pinned by requirements/lock.txt (used as constraints for the runtime set in
# requirements/base.in, so the image carries neither the test tools nor torch and the demo models).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# The dependencies: one layer that changes only with the lock file (a layer cache keeps it across builds).
FROM ${PYTHON_IMAGE} AS deps
# Behind a TLS-intercepting proxy: a CA bundle path for pip during the build (not kept in the image).
ARG PIP_CERT=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/autolabel
ENV PATH=/opt/autolabel/bin:$PATH
COPY requirements/base.in requirements/lock.txt requirements/
RUN pip install --no-cache-dir -c requirements/lock.txt -r requirements/base.in

# The project itself, apart from its dependencies (a code change rebuilds only this small layer).
FROM deps AS build
ARG PIP_CERT=
COPY pyproject.toml README.md ./
COPY contract/ contract/
COPY controller/ controller/
COPY worker/ worker/
COPY inference/ inference/
COPY steps/ steps/
COPY review/ review/
COPY runtime/ runtime/
RUN pip install --no-cache-dir --no-deps --target /opt/autolabel-app . \
    && PYTHONPATH=/opt/autolabel-app /opt/autolabel-app/bin/autolabel-controller --help >/dev/null \
    && PYTHONPATH=/opt/autolabel-app /opt/autolabel-app/bin/autolabel-worker --help >/dev/null \
    && PYTHONPATH=/opt/autolabel-app /opt/autolabel-app/bin/autolabel --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="autolabel-operator" \
      org.opencontainers.image.description="Verified Auto-Labeling for FiftyOne datasets on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/autolabel/autolabel-operator"
# The chart runs the pods as 65532:65532 with a read-only root filesystem and /tmp as an emptyDir.
RUN groupadd --system --gid 65532 autolabel \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin autolabel
COPY --from=deps /opt/autolabel /opt/autolabel
COPY --from=build /opt/autolabel-app /opt/autolabel-app
ENV PATH=/opt/autolabel-app/bin:/opt/autolabel/bin:$PATH \
    PYTHONPATH=/opt/autolabel-app \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FIFTYONE_DO_NOT_TRACK=true
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080 9090
# The chart sets the command: autolabel-controller for the Deployment, autolabel-worker run for Jobs.
CMD ["autolabel-controller"]
