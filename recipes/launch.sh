#!/usr/bin/env bash
# Shared launcher of the recipes: bash recipes/launch.sh <kind> <default config> [key=value ...]
# NPROC (processes per node), NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT go to torchrun; CONFIG
# replaces the default config; PYTHON picks the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=$1 default_config=$2
shift 2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-.venv/bin/python}
if [ "${NPROC:-1}" = 1 ] && [ "${NNODES:-1}" = 1 ]; then
  # one process: no DDP wrapper (torchrun would make the Trainer wrap the model for a world of 1)
  exec "$PY" -m "rag_retrieval.train.$kind" --config "${CONFIG:-$default_config}" "$@"
fi
exec "$PY" -m torch.distributed.run --nproc_per_node "${NPROC:-1}" --nnodes "${NNODES:-1}" \
  --node_rank "${NODE_RANK:-0}" --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
  -m "rag_retrieval.train.$kind" --config "${CONFIG:-$default_config}" "$@"
