# autolabel-operator: one entry point for set-up, tests, the demo and benchmarks.
# `make test` and `make demo` work on a fresh machine: they install what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STATE := .cluster
STATE_BIN = $(shell ./tools/build-tools.sh)
export PYTHONPATH := $(CURDIR)
export FIFTYONE_DO_NOT_TRACK := true
# Test reports: JUnit XML per tier and the 25 slowest tests printed at the end of each tier.
RESULTS := test-results
REPORT = --durations=25 --junitxml=$(RESULTS)/$(1).xml
# Integration tests run in parallel processes, one test module per process at a time (tests/conftest.py
# says why), longest first (tests/ordering.py). loadfile, not loadgroup: xdist 3.8's xdist_group
# marks do not take under pytest 9.2.
TEST_WORKERS ?= 3

.PHONY: help setup check venv tools images test-realnode test-times cluster-up cluster-down lint typecheck unit integration test verify crds release-dry-run demo bench bench-calibration bench-controller clean

help:
	@echo "make test         installs what it needs, then lint, types, CRD drift, unit, integration and real-node tests"
	@echo "make check        before every commit: lint, types, unit tests and one end-to-end run to Review"
	@echo "make setup        install what the tests and the demo need (Debian packages, Go tools, virtualenv)"
	@echo "make demo         the whole Verified Auto-Labeling flow on real images (ARGS=--keep to explore)"
	@echo "                  ARGS=--real-node: the controller and every pod in containers on a real kubelet (root)"
	@echo "make cluster-up   start the local control plane (.cluster/kubeconfig, .cluster/bin/)"
	@echo "make images       build the project's image (Dockerfile) and the Triton image for the real test node (cached)"
	@echo "make test-realnode  the real-node tier alone (part of make test): kubelet, containerd, images, runs in containers"
	@echo "make cluster-down stop it"
	@echo "make test-times   after make test: refresh the integration modules' times (longest run first)"
	@echo "make release-dry-run  what the tag workflow checks and packages, pushing nothing (docs/release.md)"
	@echo "make bench        benchmarks (worker vs raw Triton vs FiftyOne apply_model)"
	@echo "make bench-calibration  calibrated auto-approval on real labelled digits: true vs promised precision"
	@echo "make bench-controller   the controller at 50/200/500 runs on kwok: latency, RSS, CPU, API requests"

setup:
	./tools/setup.sh

venv: $(VENV)/.ready
$(VENV)/.ready: requirements/lock.txt requirements/nodeps.txt tools/setup-venv.sh
	./tools/setup-venv.sh
	touch $@

tools:
	./tools/build-tools.sh

# The project's image from Dockerfile and the Triton image (tools/cluster/triton.Dockerfile) on a
# Debian-built base, for the real test node (cached; see docs/install.md "Container image").
images: venv tools
	./tools/node-packages.sh
	AUTOLABEL_REAL_NODE=1 ./tools/build-tools.sh >/dev/null
	$(PY) -m tools.cluster.projectimage
	$(PY) -m tools.cluster.tritonimage

# The real-node tier: its own pytest session (its mongod is the one FiftyOne uses in that process).
test-realnode: images
	$(PY) -m pytest -q -m realnode $(call REPORT,realnode) tests

cluster-up: venv tools
	$(PY) -m tools.cluster up --state-dir $(STATE)

cluster-down:
	@if [ -x $(PY) ]; then $(PY) -m tools.cluster down --state-dir $(STATE); fi

lint: venv
	$(VENV)/bin/ruff check .
	PYTHONPATH=$(CURDIR):$(CURDIR)/plugins $(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy contract controller worker inference steps review runtime tools tests bench plugins/autolabel

unit: venv
	$(PY) -m pytest -q -m "not integration" $(call REPORT,unit) tests

integration: venv tools
	$(PY) -m pytest -q -m "integration and not realnode" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		$(call REPORT,integration) tests

# Refresh the integration modules' measured times, which order them longest first (tests/ordering.py).
test-times: venv
	$(PY) -m tests.ordering $(RESULTS)/integration.xml

# One end-to-end run (apply -> validation -> Indexed Job -> workers -> Review) on the real control plane.
E2E_CHECK := tests/integration/test_controller_flow.py::test_run_reaches_review_for_each_task[detection]

check: lint typecheck unit
	$(PY) -m pytest -q $(call REPORT,check) "$(E2E_CHECK)"

crds: venv
	$(PY) -m controller.crdgen

verify: venv tools
	$(PY) -m controller.crdgen --check
	$(STATE_BIN)/helm lint charts/autolabel-operator --strict --kube-version 1.34.0

# The release workflow's checks and packaging (tools/release.py) into dist/, printing what it would
# push; ARGS="--tag v0.2.0 --registry ghcr.io/<owner>". Covered by tests/unit/test_release.py.
release-dry-run: venv tools
	$(PY) -m tools.release --dry-run --helm $(STATE_BIN)/helm $(ARGS)

# The real-node tier (and its images) runs beside the integration tier: they share no control plane,
# database or port, and much of the integration tier's time is spent waiting on its peers.
test: setup
	$(MAKE) lint typecheck verify unit
	$(MAKE) -j2 --output-sync=target integration test-realnode

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
	rm -rf $(STATE) $(RESULTS) .mypy_cache .ruff_cache .pytest_cache
