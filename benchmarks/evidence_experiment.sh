#!/usr/bin/env bash
# Evidence on pkgdesc (docs/results.md "Evidence: significance, calibration, a label audit, retrieve then
# rerank"): each arm prints its table and writes its JSON under outputs/evidence/.
#   significance  the quick start's before/after (zero-shot MiniLM vs the embedding recipe) on the first 300
#                 test queries, with the paired 95% interval and p-value of each metric
#   calibrate     the CPU reranker's ECE / Brier before and after Platt scaling fitted on the 300 dev queries,
#                 measured on the first 300 test queries (none of them dev queries), and the threshold for
#                 recall 0.9 (on a copy of the reranker: its own folder is left as it is)
#   pipeline      MiniLM retrieves the top 100 of the 27,550-passage corpus for the first 300 test queries,
#                 the reranker reorders them
#   audit         zero-shot MiniLM audits the training file (its first 3,000 queries: what the embedding recipe
#                 reads); the embedding recipe is trained again on the
#                 cleaned file and compared with the recipe on the original file (first 300 test queries)
#   EMBEDDER=outputs/embedding/minilm_pkgdesc RERANKER=outputs/reranker/minilm_pkgdesc ARMS="significance calibrate" \
#     bash benchmarks/evidence_experiment.sh
# The models are the recipes' (bash recipes/train_embedding.sh, bash recipes/train_reranker.sh): trained
# first when their folders hold none. Finished arms are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
EMBEDDER=${EMBEDDER:-outputs/embedding/minilm_pkgdesc} RERANKER=${RERANKER:-outputs/reranker/minilm_pkgdesc}
ARMS=${ARMS:-significance calibrate pipeline audit} QUERIES=${QUERIES:-300}
OUT=outputs/evidence D=data/pkgdesc
mkdir -p "$OUT"
rr=.venv/bin/rag-retrieval
need() {  # folder, recipe: train the recipe's model when the folder holds none
  [ -f "$1/metrics.json" ] || bash "$2" train.output_dir="$1"
}
for arm in $ARMS; do
  case $arm in
    significance)
      need "$EMBEDDER" recipes/train_embedding.sh
      [ -f "$OUT/significance.json" ] || $rr eval --model minilm --model "$EMBEDDER" --rerank $D/test.jsonl.xz \
        --max-queries "$QUERIES" --k 1 10 --max-length 128 --json "$OUT/significance.json" ;;
    calibrate)
      need "$RERANKER" recipes/train_reranker.sh
      copy=$OUT/reranker_calibrated
      [ -d "$copy" ] || cp -r "$RERANKER" "$copy"
      [ -f "$OUT/calibration.txt" ] || $rr calibrate --model "$copy" --data $D/dev.jsonl.xz --test $D/test.jsonl.xz \
        --max-queries "$QUERIES" --max-length 128 --target-recall 0.9 | tee "$OUT/calibration.txt" ;;
    pipeline)
      need "$RERANKER" recipes/train_reranker.sh
      [ -f "$OUT/pipeline.json" ] || $rr eval --model minilm --rerank-with "$RERANKER" --corpus $D/corpus.jsonl.xz \
        --queries $D/test_queries.jsonl.xz --max-queries "$QUERIES" --top-k 100 --k 1 10 100 --max-length 128 \
        --output "$OUT/pipeline.json" | tee "$OUT/pipeline.txt" ;;
    audit)
      need "$EMBEDDER" recipes/train_embedding.sh
      [ -f "$OUT/audit.json" ] || $rr audit $D/train.jsonl.xz --format pos_neg --teacher minilm --max-queries 3000 --json "$OUT/audit.json" \
        --clean "$OUT/train.clean.jsonl" --show 8 --overwrite | tee "$OUT/audit.txt"
      [ -f "$OUT/embedding_clean/metrics.json" ] || bash recipes/train_embedding.sh data.train_path="$OUT/train.clean.jsonl" \
        eval.before_training=false train.output_dir="$OUT/embedding_clean"
      [ -f "$OUT/clean_vs_original.json" ] || $rr eval --model "$EMBEDDER" --model "$OUT/embedding_clean" \
        --rerank $D/test.jsonl.xz --max-queries "$QUERIES" --k 1 10 --max-length 128 --json "$OUT/clean_vs_original.json" ;;
    *) echo "unknown arm '$arm'" >&2; exit 2 ;;
  esac
done
