#!/usr/bin/env bash
# Fine-tune an embedding (bi-encoder) model.
#   bash recipes/train_embedding.sh                                   # CPU config, 1 process
#   NPROC=8 CONFIG=configs/embedding/bge_base_gpu.yaml bash recipes/train_embedding.sh
#   bash recipes/train_embedding.sh train.learning_rate=1e-5 'loss.matryoshka_dims=[384,128]'
# Extra arguments are config overrides (section.key=value); see recipes/launch.sh for the variables.
exec bash "$(dirname "$0")/launch.sh" embedding configs/embedding/minilm_pkgdesc_cpu.yaml "$@"
