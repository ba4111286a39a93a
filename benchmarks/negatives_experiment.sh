#!/usr/bin/env bash
# Which negatives train the best reranker? Re-mine the negatives of the pkgdesc train split
# (../shared/data/pkgdesc/train.jsonl, 7,995 queries; only its positives are read) from the
# pkgdesc corpus with `rag-retrieval mine` three ways: at random, with BM25 (bm25s) and with
# zero-shot all-MiniLM-L6-v2 (dense, exact search); test positives are excluded from the corpus.
# Then train the CPU reranker recipe (configs/reranker/minilm_pkgdesc_cpu.yaml) on each file
# and print test MRR@10 / MAP / NDCG@10 (first 300 test queries) side by side.
#   bash benchmarks/negatives_experiment.sh          # ~70 min on 2 cores (3 x ~20 min training)
#   ONLY="bm25 dense" bash benchmarks/negatives_experiment.sh   # a subset; finished arms are reused
# Mining: 8 negatives per query, the best-ranked non-positive candidates (ranks 1-100) that score
# below the positive (false-negative filter, margin 0). Outputs under outputs/negatives/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SHARED=${SHARED:-../shared/data/pkgdesc}
OUT=outputs/negatives
mkdir -p "$OUT"
for arm in ${ONLY:-random bm25 dense}; do
  data="$OUT/train_$arm.jsonl"
  if [ ! -f "$data" ]; then
    echo "[negatives] mining $arm -> $data"
    .venv/bin/rag-retrieval mine "$SHARED/train.jsonl" "$data" --format pos_neg --corpus "$SHARED/corpus.jsonl" \
      --exclude "$SHARED/test.jsonl" --method "$arm" --model minilm --negatives 8 --range 1-100 --dtype auto \
      --json "$OUT/mine_$arm.json"
  fi
  if [ ! -f "$OUT/model_$arm/metrics.json" ]; then
    echo "[negatives] training the reranker recipe on $data"
    start=$(date +%s)
    bash recipes/train_reranker.sh "data.train_path=$data" "train.output_dir=$OUT/model_$arm" \
      train.overwrite_output_dir=true
    echo "$(( $(date +%s) - start ))" > "$OUT/model_$arm/seconds"
  fi
done
.venv/bin/python - "$OUT" ${ONLY:-random bm25 dense} <<'PY'
import json, os, sys
out, arms = sys.argv[1], sys.argv[2:]
print(f"\n| negatives | MRR@10 | MAP | NDCG@10 | mining s | training command s |\n|---|---|---|---|---|---|")
for arm in arms:
    after = json.load(open(os.path.join(out, f"model_{arm}", "metrics.json")))["after"]
    m = {k.split("_")[-1]: v for k, v in after.items()}  # rerank_mrr@10 -> mrr@10
    mine = json.load(open(os.path.join(out, f"mine_{arm}.json")))
    secs = open(os.path.join(out, f"model_{arm}", "seconds")).read().strip()
    print(f"| {arm} | {m['mrr@10']:.4f} | {m['map']:.4f} | {m['ndcg@10']:.4f} | {sum(mine['seconds'].values()):.0f} | {secs} |")
PY
