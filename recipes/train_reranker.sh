#!/usr/bin/env bash
# Fine-tune a cross-encoder reranker.
#   bash recipes/train_reranker.sh                                    # CPU config, 1 process
#   NPROC=8 CONFIG=configs/reranker/bge_reranker_v2_m3_gpu.yaml bash recipes/train_reranker.sh
#   bash recipes/train_reranker.sh loss.name=bce train.learning_rate=3e-5
# Extra arguments are config overrides (section.key=value); see recipes/launch.sh for the variables.
exec bash "$(dirname "$0")/launch.sh" reranker configs/reranker/minilm_pkgdesc_cpu.yaml "$@"
