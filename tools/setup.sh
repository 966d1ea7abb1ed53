#!/usr/bin/env bash
# Installs everything `make test` and `make demo` need on a fresh Debian machine, and only checks
# on a warm one: the Debian packages (Python 3.11 with venv and libpython for Triton's stub,
# openssl, chromium for the App's browser test, the real node's containerd/runc/CNI/buildah),
# the Go-built tools (control plane, Kueue, MinIO, the real node's kubelet) and the virtualenv.
# `make setup` runs it; `make test` and `.ci/run` go through it, so the two cannot disagree.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
[ -x /usr/bin/python3.11 ] || need_apt+=(python3.11)
/usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3.11-venv)
[ -e /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 ] || need_apt+=(libpython3.11)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the App panel's browser test (Playwright drives it)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "Go is required to build the control plane (tools/build-tools.sh)" >&2; exit 1; }

# The virtualenv is mostly downloads and unpacking: it runs beside the CPU-bound Go builds.
./tools/setup-venv.sh >/dev/null &
venv_pid=$!
trap 'kill "$venv_pid" 2>/dev/null || true' EXIT  # a failed step below leaves no pip behind
./tools/node-packages.sh  # the real node's containerd, runc, CNI plugins, buildah (make test-realnode)
./tools/build-tools.sh >/dev/null
AUTOLABEL_REAL_NODE=1 ./tools/build-tools.sh >/dev/null  # and its kubelet
wait "$venv_pid" || { echo "the virtualenv failed (tools/setup-venv.sh)" >&2; exit 1; }
trap - EXIT
