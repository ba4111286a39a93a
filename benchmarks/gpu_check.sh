#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): each kind's CPU config on CUDA in bf16 for 20 steps, the
# embed / rerank / embedding-training benchmarks on CUDA, bench_scaling --gpu; one JSON.
#   bash benchmarks/gpu_check.sh                      # writes outputs/gpu_check/gpu_check.json
#   bash benchmarks/gpu_check.sh --only serving       # a part: kinds | serving | train | scaling
#   bash benchmarks/gpu_check.sh --device cpu --steps 2 --eval-queries 5 --passages 64   # the plumbing, on a CPU
# PYTHON: the interpreter with a CUDA torch (default: .venv/bin/python if there, else python3).
# BUNDLE: a folder made by `python benchmarks/gpu_check.py --make-bundle DIR` where the packages are
#   installed, for a GPU machine without a network: its wheels are installed into $BUNDLE/site (no
#   dependencies resolved: the machine has torch, transformers and the rest) and its models used.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
args=()
if [ -n "${BUNDLE:-}" ]; then
  site=$(mktemp -d)
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$BUNDLE"/wheels/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  args+=(--bundle "$BUNDLE")
fi
exec "$PYTHON" benchmarks/gpu_check.py "${args[@]}" "$@"
