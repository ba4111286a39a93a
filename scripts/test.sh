#!/usr/bin/env bash
# Set up .venv, then run the whole test suite (offline, CPU). Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m "not slow"` for the quick part only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} WANDB_MODE=offline TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
