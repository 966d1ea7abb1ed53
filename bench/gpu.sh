#!/usr/bin/env bash
# The benchmark on a machine with an NVIDIA GPU: `bench/gpu.sh [bench options]`.
#
# Needs: an NVIDIA GPU with its driver (nvidia-smi), the project's virtualenv (.venv, from
# `make venv`; its torch is the CUDA build) and nothing else: mongod and tritonserver come from
# the virtualenv as in `make bench`. It runs `python -m bench --gpu`: the same table as the CPU
# bench (raw Triton, the worker with decoded input, apply_model, decode only, the worker with
# encoded input), with efficientnet_lite0 and apply_model's model on the GPU
# (AUTOLABEL_TORCH_DEVICE=cuda) and larger batches tried. The encoded-input ensembles decode
# with PIL in the python backend (models/image_decoder); a DALI or nvJPEG decode step is what
# a production repository would put there.
#
# Without a GPU it stops with exit code 2 before starting anything; `--cpu` runs the same
# command on the CPU (the check that the script itself works).
# Not yet run on a GPU: written and tested on a 2-core machine without one.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
if [[ "${1:-}" == "--cpu" ]]; then
  device=cpu
  shift
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench/gpu.sh needs an NVIDIA GPU and its driver (nvidia-smi found none);" \
    "run 'make bench' for the CPU benchmark, or 'bench/gpu.sh --cpu' to check this script" >&2
  exit 2
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "bench/gpu.sh needs the project's virtualenv: run 'make venv' first" >&2
  exit 2
fi
if [[ "$device" == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  if ! .venv/bin/python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench/gpu.sh: the virtualenv's torch sees no CUDA device (a CPU-only torch build?)" >&2
    exit 2
  fi
fi
export AUTOLABEL_TORCH_DEVICE="$device" PYTHONPATH="$PWD" FIFTYONE_DO_NOT_TRACK=true
exec .venv/bin/python -m bench --gpu "$@"
