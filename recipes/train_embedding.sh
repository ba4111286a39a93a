#!/usr/bin/env bash
# Fine-tune an embedding (bi-encoder) model.
#   bash recipes/train_embedding.sh                                   # CPU config, 1 process
#   NPROC=8 CONFIG=configs/embedding/bge_base_gpu.yaml bash recipes/train_embedding.sh
#   bash recipes/train_embedding.sh train.learning_rate=1e-5 'loss.matryoshka_dims=[384,128]'
# Extra arguments are config overrides (section.key=value). Multi-node: set NNODES, NODE_RANK,
# MASTER_ADDR and MASTER_PORT on every node.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-configs/embedding/minilm_pkgdesc_cpu.yaml}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -m torch.distributed.run --nproc_per_node "${NPROC:-1}" --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" \
  --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
  -m rag_retrieval.train.embedding --config "$CONFIG" "$@"
