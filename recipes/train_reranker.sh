#!/usr/bin/env bash
# Fine-tune a cross-encoder reranker.
#   bash recipes/train_reranker.sh                                    # CPU recipe: two stages, below
#   bash recipes/train_reranker.sh data.train_path=mine.jsonl eval.rerank_path=mine_dev.jsonl \
#     train.output_dir=outputs/reranker/mine                          # your data: both stages learn it
#   NPROC=8 CONFIG=configs/reranker/bge_reranker_v2_m3_gpu.yaml bash recipes/train_reranker.sh
#   CONFIG=configs/reranker/minilm_pkgdesc_cpu.yaml bash recipes/train_reranker.sh   # one stage, new head
# The CPU recipe (configs/reranker/minilm_two_stage_cpu.yaml) runs in two stages:
#   1. the embedding recipe (STAGE1_CONFIG, default configs/embedding/minilm_pkgdesc_cpu.yaml) on the
#      reranker's training file, into the folder the reranker config names as its model
#      (<train.output_dir>/stage1_embedding); skipped when that folder already holds the model trained
#      on the same file, resumed when it holds a checkpoint;
#   2. the reranker made from that embedding model (model.separate_layers + model.joint_gate: before
#      training it ranks exactly as the embedding model does; training opens its joint layers).
# Extra arguments are config overrides of the reranker (section.key=value); the data and evaluation keys
# among them (data.train_path, data.format, data.columns, eval.rerank_path, ...) reach stage 1 too,
# STAGE1_ARGS="key=value ..." stage 1 only (the default stage 1 also gets train.bf16=auto, eager
# attention and no evaluation before training, below). A CONFIG without STAGE1_CONFIG trains in one stage.
# See recipes/launch.sh for the launcher variables (NPROC, LAUNCHER, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CONFIG:-}" ] && [ -z "${STAGE1_CONFIG:-}" ]; then
  exec bash recipes/launch.sh reranker "$CONFIG" "$@"
fi
RERANKER_CONFIG=${CONFIG:-configs/reranker/minilm_two_stage_cpu.yaml}
# the CPU stage 1 (no STAGE1_CONFIG given): bf16 autocast where the CPU has bf16 units, eager attention
# (under bf16 PyTorch's SDPA backward is slow on CPU: 5.4 s/step against about 7.3), evaluated after
# training only
STAGE1_DEFAULTS=""
if [ -z "${STAGE1_CONFIG:-}" ]; then
  STAGE1_DEFAULTS="train.bf16=auto model.attn_implementation=eager eval.before_training=false"
fi
STAGE1_CONFIG=${STAGE1_CONFIG:-configs/embedding/minilm_pkgdesc_cpu.yaml}
unset CONFIG
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
# which stage-1 run the reranker needs (nothing when it is there); a config mistake stops here
plan=$(mktemp)
trap 'rm -f "$plan"' EXIT
"${PYTHON:-.venv/bin/python}" -m rag_retrieval.train.stages "$plan" --config "$RERANKER_CONFIG" "$@"
mapfile -t stage1 < "$plan"
if [ "${#stage1[@]}" -gt 0 ]; then
  echo "stage 1: the embedding recipe ($STAGE1_CONFIG) ${stage1[0]}" >&2
  # shellcheck disable=SC2086
  bash recipes/launch.sh embedding "$STAGE1_CONFIG" "${stage1[@]}" $STAGE1_DEFAULTS ${STAGE1_ARGS:-}
fi
echo "stage 2: the reranker ($RERANKER_CONFIG)" >&2
bash recipes/launch.sh reranker "$RERANKER_CONFIG" "$@"
