#!/usr/bin/env bash
# Distil a teacher reranker into a cross-encoder student: score the training data with the teacher
# (pos_scores / neg_scores), then train the student with KL distillation on those scores.
#   TEACHER=BAAI/bge-reranker-v2-m3 bash recipes/distill_reranker.sh
#   TEACHER=outputs/reranker/minilm_pkgdesc DATA=data/pkgdesc/train.jsonl.xz bash recipes/distill_reranker.sh train.max_steps=50
# Extra arguments are config overrides of the student run; see recipes/launch.sh for the variables.
set -euo pipefail
cd "$(dirname "$0")/.."
TEACHER=${TEACHER:-outputs/reranker/minilm_pkgdesc}
DATA=${DATA:-data/pkgdesc/train.jsonl.xz}
name=$(basename "$DATA")
SCORED=${SCORED:-outputs/distill/${name%%.jsonl*}_scored.jsonl}
mkdir -p "$(dirname "$SCORED")"
# SCORE_ARGS: options of scripts/score_with_teacher.py (default: the first 3,000 records of DATA), e.g.
# "--dtype auto --max-records 1000 --max-negatives 3"; SCORE_ARGS="" scores the whole file
# The scored file is reused unless the teacher folder changed after it was written (RESCORE=1 forces it).
if [ -n "${RESCORE:-}" ] || [ ! -f "$SCORED" ] || { [ -e "$TEACHER" ] && [ -n "$(find "$TEACHER" -newer "$SCORED" -print -quit)" ]; }; then
  # shellcheck disable=SC2086
  "${PYTHON:-.venv/bin/python}" scripts/score_with_teacher.py --model "$TEACHER" --input "$DATA" \
    --output "$SCORED" --overwrite ${SCORE_ARGS---max-records 3000}
fi
exec bash recipes/launch.sh reranker configs/reranker/minilm_distill_cpu.yaml data.train_path="$SCORED" "$@"
