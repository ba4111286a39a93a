#!/usr/bin/env bash
# Quick start: set up .venv, then fine-tune all-MiniLM-L6-v2 as an embedding model on the bundled
# data (data/pkgdesc) on CPU and print MRR/NDCG before and after. Extra arguments are config overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash recipes/train_embedding.sh train.overwrite_output_dir=true "$@"
