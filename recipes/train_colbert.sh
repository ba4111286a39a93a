#!/usr/bin/env bash
# Fine-tune a ColBERT late-interaction model.
#   bash recipes/train_colbert.sh                                     # CPU config, 1 process
#   NPROC=8 CONFIG=configs/colbert/bge_m3_gpu.yaml bash recipes/train_colbert.sh
#   bash recipes/train_colbert.sh model.dim=64 train.max_steps=100
# Extra arguments are config overrides (section.key=value); see recipes/launch.sh for the variables.
exec bash "$(dirname "$0")/launch.sh" colbert configs/colbert/minilm_pkgdesc_cpu.yaml "$@"
