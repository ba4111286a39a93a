#!/usr/bin/env bash
# Train PE-Rank in its two stages: alignment (only the projector learns), then learning to rank from the
# aligned model (the rank config's model.model_name_or_path is the align config's output_dir).
#   bash recipes/train_pe_rank.sh                                   # SmolLM2 + MiniLM on CPU
#   NPROC=8 ALIGN_CONFIG=configs/pe_rank/qwen2.5_7b_bge_base_gpu_align.yaml \
#     RANK_CONFIG=configs/pe_rank/qwen2.5_7b_bge_base_gpu_rank.yaml bash recipes/train_pe_rank.sh
#   SKIP_ALIGN=1 bash recipes/train_pe_rank.sh train.max_steps=300  # stage 2 again from the stage-1 model
# Extra arguments override stage 2; ALIGN_ARGS="key=value ..." overrides stage 1. See recipes/launch.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ALIGN_CONFIG=${ALIGN_CONFIG:-configs/pe_rank/smollm2_minilm_cpu_align.yaml}
RANK_CONFIG=${RANK_CONFIG:-configs/pe_rank/smollm2_minilm_cpu_rank.yaml}
unset CONFIG
if [ -z "${SKIP_ALIGN:-}" ]; then
  # shellcheck disable=SC2086
  bash recipes/launch.sh pe_rank "$ALIGN_CONFIG" ${ALIGN_ARGS:-}
fi
exec bash recipes/launch.sh pe_rank "$RANK_CONFIG" "$@"
