#!/usr/bin/env bash
# Fine-tune a decoder-only LLM reranker (yes-token logit or score head, layerwise, LoRA or full).
#   bash recipes/train_llm_reranker.sh                                      # SmolLM2-135M on CPU, 1 process
#   NPROC=8 CONFIG=configs/llm_reranker/qwen2.5_1.5b_lora_gpu.yaml bash recipes/train_llm_reranker.sh
#   bash recipes/train_llm_reranker.sh model.use_lora=true train.learning_rate=2e-4
# Extra arguments are config overrides (section.key=value); see recipes/launch.sh for the variables.
exec bash "$(dirname "$0")/launch.sh" llm_reranker configs/llm_reranker/smollm2_pkgdesc_cpu.yaml "$@"
