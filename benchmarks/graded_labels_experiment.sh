#!/usr/bin/env bash
# Graded labels at full size: the CPU reranker recipe (configs/reranker/minilm_pkgdesc_cpu.yaml, 340
# steps x 16 queries, 1 positive + 7 negatives, listwise CE) on the pkgdesc train split as it is
# (binary: positive 1, every BM25 negative 0) and on the same records converted to the hits format
# with grades from the BM25 rank of each negative: positive 2, the 3 negatives BM25 ranked highest 1
# (near misses), the others 0. Listwise CE then spreads its target over the grades; lambda (NDCG-weighted
# pairs) orders positive > near misses > the rest. First 300 test queries, MRR@10 / MAP / NDCG@10.
#   bash benchmarks/graded_labels_experiment.sh                 # the arms: ~20 min each on 2 cores
#   ARMS="graded_lambda" bash benchmarks/graded_labels_experiment.sh
# Outputs under outputs/graded/; finished arms are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=outputs/graded
ARMS=${ARMS:-binary graded graded_lambda}
mkdir -p "$OUT"
hits="$OUT/train_graded_hits.jsonl.gz"
if [ ! -f "$hits" ]; then
  .venv/bin/python - "$hits" <<'PY'
import gzip, json, sys
from rag_retrieval.data.inputs import iter_records
with gzip.open(sys.argv[1], "wt", encoding="utf-8") as out:
    for _, rec, _ in iter_records("data/pkgdesc/train.jsonl.xz"):
        hits = [{"content": rec["pos"][0], "label": 2}]
        hits += [{"content": d, "label": 1 if rank < 3 else 0} for rank, d in enumerate(rec["neg"])]  # neg: BM25 order
        out.write(json.dumps({"query": rec["query"], "hits": hits}, ensure_ascii=False) + "\n")
PY
fi
declare -A ARGS=(
  [binary]=""
  [graded]="data.train_path=$hits data.format=hits"
  [graded_lambda]="data.train_path=$hits data.format=hits loss.name=lambda"
)
for arm in $ARMS; do
  [ -n "${ARGS[$arm]+set}" ] || { echo "unknown arm '$arm'; arms: ${!ARGS[*]}" >&2; exit 2; }
  if [ ! -f "$OUT/model_$arm/metrics.json" ]; then
    echo "[graded] training the reranker recipe: $arm"
    start=$(date +%s)
    # shellcheck disable=SC2086
    bash recipes/train_reranker.sh ${ARGS[$arm]} train.output_dir="$OUT/model_$arm" train.overwrite_output_dir=true
    echo $(( $(date +%s) - start )) > "$OUT/model_$arm/seconds"
  fi
done
.venv/bin/python - "$OUT" $ARMS <<'PY'
import json, os, sys
out, arms = sys.argv[1], sys.argv[2:]
print("| labels | MRR@10 | MAP | NDCG@10 | seconds |\n|---|---|---|---|---|")
for arm in arms:
    m = json.load(open(os.path.join(out, f"model_{arm}", "metrics.json")))["after"]
    seconds = open(os.path.join(out, f"model_{arm}", "seconds")).read().strip()
    print(f"| {arm} | {m['rerank_mrr@10']:.4f} | {m['rerank_map']:.4f} | {m['rerank_ndcg@10']:.4f} | {seconds} |")
PY
