#!/usr/bin/env bash
# The recipes on a domain: zero-shot all-MiniLM-L6-v2, the embedding recipe, the reranker recipe
# (bash recipes/train_reranker.sh: two stages, the whole command timed; its stage-1 model in
# reranker_<tag>/stage1_embedding) and the one-stage reranker recipe it replaced (`standard`: a new
# head, configs/reranker/minilm_pkgdesc_cpu.yaml), each trained on the domain's train split with only the
# data paths changed (their own step budgets); during training they are evaluated on the DEV split
# (what settings are chosen on), then the `test` arm scores every model on the TEST split, and the
# `pipeline` arm: the embedding recipe's model ranks each test query's candidates and the reranker
# reorders its top 10; `fulltest` scores the zero-shot, embedding and reranker models on every test query
# that is no dev query (pkgdesc: 698, pyfunc: 500), with the paired comparison of the reranker and the
# embedding recipe there (delta, 95% interval, p-value). Prints MRR@10 / NDCG@10 and minutes.
#   DOMAIN=pyfunc bash benchmarks/domains_experiment.sh            # data/pyfunc/{train,dev,test}.jsonl.xz
#   ARMS="reranker test pipeline" TAG=try1 RERANKER_ARGS="train.learning_rate=1e-4" bash benchmarks/domains_experiment.sh
# Outputs under outputs/domains/<domain>/; finished arms are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DOMAIN=${DOMAIN:-pyfunc} QUERIES=${QUERIES:-300} TAG=${TAG:-recipe} ETAG=${EMBEDDING_TAG:-recipe}
ARMS=${ARMS:-zeroshot embedding reranker standard test pipeline}
OUT=outputs/domains/$DOMAIN
TRAIN=data/$DOMAIN/train.jsonl.xz DEV=data/$DOMAIN/dev.jsonl.xz TEST=data/$DOMAIN/test.jsonl.xz
mkdir -p "$OUT"
common=(data.train_path="$TRAIN" eval.rerank_path="$DEV" eval.max_queries="$QUERIES" train.overwrite_output_dir=true)
evaluate() {  # name, model, max length, split file[, queries: default $QUERIES]
  [ -f "$OUT/$1.json" ] || timed "$1" .venv/bin/rag-retrieval eval --model "$2" --rerank "$4" --max-queries "${5:-$QUERIES}" \
    --k 1 10 --max-length "$3" --output "$OUT/$1.json"
}
timed() { local name=$1; shift; local start; start=$(date +%s); "$@"; echo $(( $(date +%s) - start )) > "$OUT/$name.seconds"; }
for arm in $ARMS; do
  case $arm in
    zeroshot)
      evaluate zeroshot_dev minilm 128 "$DEV"; evaluate zeroshot_test minilm 128 "$TEST" ;;
    embedding)
      # shellcheck disable=SC2086
      [ -f "$OUT/embedding_$ETAG/metrics.json" ] || timed "embedding_$ETAG" bash recipes/train_embedding.sh \
        "${common[@]}" eval.before_training=false train.output_dir="$OUT/embedding_$ETAG" ${EMBEDDING_ARGS:-} ;;
    reranker)  # the whole command: its own stage 1 (in reranker_<tag>/stage1_embedding), then stage 2
      # shellcheck disable=SC2086
      [ -f "$OUT/reranker_$TAG/metrics.json" ] || timed "reranker_$TAG" bash recipes/train_reranker.sh "${common[@]}" \
        train.output_dir="$OUT/reranker_$TAG" ${RERANKER_ARGS:-} ;;
    standard)
      # shellcheck disable=SC2086
      [ -f "$OUT/reranker_standard/metrics.json" ] || timed reranker_standard env CONFIG=configs/reranker/minilm_pkgdesc_cpu.yaml \
        bash recipes/train_reranker.sh "${common[@]}" train.output_dir="$OUT/reranker_standard" ${STANDARD_ARGS:-} ;;
    test)  # the evaluation lengths of the recipes: 128 tokens per passage / per pair
      evaluate "embedding_${ETAG}_test" "$OUT/embedding_$ETAG" 128 "$TEST"
      evaluate "reranker_${TAG}_test" "$OUT/reranker_$TAG" 128 "$TEST"
      if [ -d "$OUT/reranker_standard" ]; then evaluate reranker_standard_test "$OUT/reranker_standard" 128 "$TEST"; fi ;;
    fulltest)  # every test query that is no dev query (pkgdesc's dev split is its test queries 301-600): less noise
      full=$OUT/test_without_dev.jsonl
      [ -f "$full" ] || .venv/bin/python - "$TEST" "$DEV" "$full" <<'PY'
import json, sys
from rag_retrieval.data.sources import open_text
test, dev, out = sys.argv[1:]
held = {json.loads(line)["query"] for line in open_text(dev)}
with open_text(test) as f, open(out, "w") as g:
    g.writelines(line for line in f if json.loads(line)["query"] not in held)
PY
      n=$(wc -l < "$full")
      evaluate zeroshot_fulltest minilm 128 "$full" "$n"
      # the embedding recipe and the reranker in one run: their paired comparison (delta, 95% interval, p)
      [ -f "$OUT/fulltest_${TAG}_cmp.json" ] || .venv/bin/rag-retrieval eval --model "$OUT/embedding_$ETAG" \
        --model "$OUT/reranker_$TAG" --rerank "$full" --max-queries "$n" --k 1 10 --max-length 128 \
        --output "$OUT/fulltest_${TAG}.json" --json "$OUT/fulltest_${TAG}_cmp.json" ;;
    pipeline)
      [ -f "$OUT/pipeline_${TAG}_test.json" ] || .venv/bin/python benchmarks/pipeline_rerank.py \
        --embedder "$OUT/embedding_$ETAG" --reranker "$OUT/reranker_$TAG" --data "$TEST" \
        --max-queries "$QUERIES" --top 10 --output "$OUT/pipeline_${TAG}_test.json" ;;
    *) echo "unknown arm '$arm'" >&2; exit 2 ;;
  esac
done
.venv/bin/python - "$OUT" "$TAG" "$ETAG" <<'PY'
import json, os, sys
out, tag, etag = sys.argv[1:]
full = json.load(open(f"{out}/fulltest_{tag}.json")) if os.path.isfile(f"{out}/fulltest_{tag}.json") else {}
pick = lambda name: full.get(f"{out}/{name}")  # noqa: E731
def metrics(path, key=None):
    if not os.path.isfile(path):
        return None
    m = json.load(open(path))
    return m[key] if key else next(iter(m.values())) if "rerank_mrr@10" not in m else m
def minutes(name):
    path = f"{out}/{name}.seconds"
    return f"{int(open(path).read()) / 60:.1f}" if os.path.isfile(path) else ""
print(f"| {os.path.basename(out)} | dev MRR@10 | test MRR@10 | test NDCG@10 | full test MRR@10 / NDCG@10 | CPU min (training run) |\n"
      "|---|---|---|---|---|---|")
rows = [("zero-shot MiniLM bi-encoder", metrics(f"{out}/zeroshot_dev.json"), metrics(f"{out}/zeroshot_test.json"),
         metrics(f"{out}/zeroshot_fulltest.json"), ""),
        ("embedding recipe", metrics(f"{out}/embedding_{etag}_dev.json") or metrics(f"{out}/embedding_{etag}/metrics.json", "after"),
         metrics(f"{out}/embedding_{etag}_test.json"), pick(f"embedding_{etag}"), minutes(f"embedding_{etag}")),
        ("one-stage reranker recipe (new head; before)", metrics(f"{out}/reranker_standard/metrics.json", "after"),
         metrics(f"{out}/reranker_standard_test.json"), None, minutes("reranker_standard")),
        (f"its stage 1 (the embedding model the reranker starts from)",
         metrics(f"{out}/reranker_{tag}/stage1_embedding/metrics.json", "after"), None, None, minutes(f"reranker_{tag}_stage1")),
        (f"two-stage reranker recipe ({tag}; stage 2, or the whole command when no stage-1 minutes are above)",
         metrics(f"{out}/reranker_{tag}/metrics.json", "after"), metrics(f"{out}/reranker_{tag}_test.json"),
         pick(f"reranker_{tag}"), minutes(f"reranker_{tag}")),
        (f"pipeline: embedding recipe's top 10 reordered by the reranker ({tag})", None,
         metrics(f"{out}/pipeline_{tag}_test.json", "pipeline"), None, "")]
for name, dev, test, full, mins in rows:
    fmt = lambda m, k: f"{m[k]:.4f}" if m else ""
    both = f"{fmt(full, 'rerank_mrr@10')} / {fmt(full, 'rerank_ndcg@10')}" if full else ""
    print(f"| {name} | {fmt(dev, 'rerank_mrr@10')} | {fmt(test, 'rerank_mrr@10')} | {fmt(test, 'rerank_ndcg@10')} | {both} | {mins} |")
for path, what in ((f"{out}/fulltest_{tag}_cmp.json", "full test: reranker vs embedding recipe"),
                   (f"{out}/pipeline_{tag}_test.json", "pipeline vs embedding model alone")):
    if os.path.isfile(path):
        data = json.load(open(path))
        for r in data.get("comparisons", data.get("pipeline_vs_embedder", [])):
            if r["metric"] in ("rerank_mrr@10", "rerank_ndcg@10"):
                lo, hi = r["ci95"]
                print(f"{what}, {r['metric']}: {r['delta']:+.4f} [{lo:+.4f}, {hi:+.4f}], p {r['p_value']:.4f}, "
                      f"wins/ties/losses {r['wins']}/{r['ties']}/{r['losses']}")
PY
