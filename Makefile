# autolabel-operator: one entry point for set-up, tests, the demo and benchmarks.
# `make test` and `make demo` work on a fresh machine: they install what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STATE := .cluster
STATE_BIN = $(shell ./tools/build-tools.sh)
export PYTHONPATH := $(CURDIR)
export FIFTYONE_DO_NOT_TRACK := true

.PHONY: help venv tools images test-realnode cluster-up cluster-down lint typecheck unit integration test verify crds demo bench bench-calibration bench-controller clean

help:
	@echo "make test         lint, types, CRD drift check, unit and integration tests, the real-node tier"
	@echo "make demo         the whole Verified Auto-Labeling flow on real images (ARGS=--keep to explore)"
	@echo "                  ARGS=--real-node: the controller and every pod in containers on a real kubelet (root)"
	@echo "make cluster-up   start the local control plane (.cluster/kubeconfig, .cluster/bin/)"
	@echo "make images       build the project's image (Dockerfile) and the Triton image for the real test node (cached)"
	@echo "make test-realnode  the real-node tier alone (part of make test): kubelet, containerd, images, runs in containers"
	@echo "make cluster-down stop it"
	@echo "make bench        benchmarks (worker vs raw Triton vs FiftyOne apply_model)"
	@echo "make bench-calibration  calibrated auto-approval on real labelled digits: true vs promised precision"
	@echo "make bench-controller   the controller at 50/200/500 runs on kwok: latency, RSS, CPU, API requests"

venv: $(VENV)/.ready
$(VENV)/.ready: requirements/lock.txt requirements/nodeps.txt tools/setup-venv.sh
	./tools/setup-venv.sh
	touch $@

tools:
	./tools/build-tools.sh

# The project's image from Dockerfile and the Triton image (tools/cluster/triton.Dockerfile) on a
# Debian-built base, for the real test node (cached; see README "Container image").
images: venv tools
	./tools/node-packages.sh
	AUTOLABEL_REAL_NODE=1 ./tools/build-tools.sh >/dev/null
	$(PY) -m tools.cluster.projectimage
	$(PY) -m tools.cluster.tritonimage

# The real-node tier: its own pytest session (its mongod is the one FiftyOne uses in that process).
test-realnode: images
	$(PY) -m pytest -q -m realnode tests

cluster-up: venv tools
	$(PY) -m tools.cluster up --state-dir $(STATE)

cluster-down:
	@if [ -x $(PY) ]; then $(PY) -m tools.cluster down --state-dir $(STATE); fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy contract controller inference tools tests bench plugins/autolabel

unit: venv
	$(PY) -m pytest -q -m "not integration" tests

integration: venv tools
	$(PY) -m pytest -q -m "integration and not realnode" tests

crds: venv
	$(PY) -m controller.crdgen

verify: venv tools
	$(PY) -m controller.crdgen --check
	$(STATE_BIN)/helm lint charts/autolabel-operator --strict --kube-version 1.34.0

test: lint typecheck verify unit integration test-realnode

# ARGS=--real-node: the real node's Debian packages and kubelet first (root), as `make images`.
demo: venv tools
ifneq (,$(findstring --real-node,$(ARGS)))
	./tools/node-packages.sh
	AUTOLABEL_REAL_NODE=1 ./tools/build-tools.sh >/dev/null
endif
	$(PY) -m tools.demo $(ARGS)

bench: venv
	$(PY) -m bench $(ARGS)

bench-calibration: venv
	$(PY) -m bench.calibration $(ARGS)

bench-controller: venv tools
	$(PY) -m bench.controller $(ARGS)

clean: cluster-down
	rm -rf $(STATE) .mypy_cache .ruff_cache .pytest_cache
