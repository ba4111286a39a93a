#!/usr/bin/env bash
# Which negatives train the best reranker? Re-mine the negatives of the pkgdesc train split
# (data/pkgdesc/train.jsonl.xz, 7,995 queries; only its positives are read) from the
# pkgdesc corpus with `rag-retrieval mine`, test positives excluded from the corpus, then train the
# CPU reranker recipe (configs/reranker/minilm_pkgdesc_cpu.yaml, 340 steps x 16 queries, 1 positive +
# 7 negatives) on each file and print test MRR@10 / MAP / NDCG@10 (first 300 test queries).
# Arms (8 negatives per query, the best-ranked non-positive candidates of ranks 1-100):
#   random        uniform over the corpus
#   bm25          BM25 (bm25s, stemmed), no false-negative filter
#   bm25_margin0  BM25, dropping candidates that score at or above the positive (--margin 0)
#   dense         zero-shot all-MiniLM-L6-v2, exact cosine search, dropping candidates above 95% of
#                 the positive's score (--relative-margin 0.05, a positive-aware filter)
#   bash benchmarks/negatives_experiment.sh               # every arm: ~15 min each on 2 cores
#   ARMS="random dense" bash benchmarks/negatives_experiment.sh   # a subset; finished arms are reused
# Outputs (mined files, summaries, models, metrics) under outputs/negatives/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SHARED=${SHARED:-data/pkgdesc}
OUT=outputs/negatives
ARMS=${ARMS:-random bm25 bm25_margin0 dense}
declare -A MINE=(
  [random]="--method random"
  [bm25]="--method bm25"
  [bm25_margin0]="--method bm25 --margin 0"
  [dense]="--method dense --model minilm --relative-margin 0.05 --dtype auto"
)
mkdir -p "$OUT"
for arm in $ARMS; do
  [ -n "${MINE[$arm]:-}" ] || { echo "unknown arm '$arm'; arms: ${!MINE[*]}" >&2; exit 2; }
  data="$OUT/train_$arm.jsonl"
  if [ ! -f "$data" ]; then
    echo "[negatives] mining $arm -> $data"
    # shellcheck disable=SC2086
    .venv/bin/rag-retrieval mine "$SHARED/train.jsonl.xz" "$data" --format pos_neg --corpus "$SHARED/corpus.jsonl.xz" \
      --exclude "$SHARED/test.jsonl.xz" --negatives 8 --range 1-100 ${MINE[$arm]} --json "$OUT/mine_$arm.json"
  fi
  if [ ! -f "$OUT/model_$arm/metrics.json" ]; then
    echo "[negatives] training the reranker recipe on $data"
    bash recipes/train_reranker.sh "data.train_path=$data" "train.output_dir=$OUT/model_$arm" \
      train.overwrite_output_dir=true
  fi
done
# shellcheck disable=SC2086
.venv/bin/python - "$OUT" $ARMS <<'PY'
import json, os, sys
out, arms = sys.argv[1], sys.argv[2:]
print("\n| negatives | MRR@10 | MAP | NDCG@10 | dropped as false negatives | queries short of 8 | miner's own MRR@10 on train |")
print("|---|---|---|---|---|---|---|")
for arm in arms:
    after = json.load(open(os.path.join(out, f"model_{arm}", "metrics.json")))["after"]
    m = {k.split("_")[-1]: v for k, v in after.items()}  # rerank_mrr@10 -> mrr@10
    mine = json.load(open(os.path.join(out, f"mine_{arm}.json")))
    own = mine["positive_mrr_at_10"]
    print(f"| {arm} | {m['mrr@10']:.4f} | {m['map']:.4f} | {m['ndcg@10']:.4f} | {mine['dropped_as_false_negative']:,} "
          f"| {mine['queries_short_of_negatives']:,} | {'-' if own is None else f'{own:.4f}'} |")
PY
