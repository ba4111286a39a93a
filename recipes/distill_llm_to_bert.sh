#!/usr/bin/env bash
# Distil an LLM reranker into a BERT cross-encoder: the teacher (default: the SmolLM2 reranker trained by
# recipes/train_llm_reranker.sh; any model rag_retrieval.Reranker loads) scores the training pairs through
# the inference API (scripts/score_with_teacher.py), then a MiniLM cross-encoder learns its soft scores
# (configs/reranker/minilm_distill_cpu.yaml: KL to the teacher's softmax + listwise CE on the labels).
#   bash recipes/train_llm_reranker.sh && bash recipes/distill_llm_to_bert.sh
#   TEACHER=BAAI/bge-reranker-v2-gemma DATA=my_train.jsonl bash recipes/distill_llm_to_bert.sh train.max_steps=500
# Extra arguments are config overrides of the student run; DATA (pos_neg JSONL to score), SCORED
# (where the scored copy goes) and SCORE_ARGS as in recipes/distill_reranker.sh.
set -euo pipefail
export TEACHER=${TEACHER:-outputs/llm_reranker/smollm2_pkgdesc}
export DATA=${DATA:-data/pkgdesc/train.jsonl.xz}
name=$(basename "$DATA")
export SCORED=${SCORED:-outputs/distill/$(basename "$TEACHER")_${name%%.jsonl*}_scored.jsonl}
# CPU default: the first 1,000 queries with their positive and first 3 negatives (4,000 LLM forward
# passes, bf16 where fast); SCORE_ARGS="" scores the whole file
export SCORE_ARGS=${SCORE_ARGS---dtype auto --max-records 1000 --max-negatives 3}
exec bash "$(dirname "$0")/distill_reranker.sh" "train.output_dir=outputs/reranker/minilm_from_$(basename "$TEACHER")" "$@"
