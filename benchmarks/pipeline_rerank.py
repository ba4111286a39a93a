"""Retrieve-then-rerank on a reranking file: a bi-encoder ranks each query's candidates, a reranker
reorders its top ``--top`` (the rest keep the bi-encoder's order); prints MRR@10 / NDCG@10 of the
bi-encoder alone and of the pipeline, and the pipeline's paired comparison with the bi-encoder
alone (delta, 95% interval, p-value per metric), and writes them as JSON.

    .venv/bin/python benchmarks/pipeline_rerank.py --embedder outputs/domains/pyfunc/embedding_recipe \\
        --reranker outputs/domains/pyfunc/reranker_recipe --data data/pyfunc/test.jsonl.xz --top 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rag_retrieval.eval.evaluators import RerankEvaluator  # noqa: E402
from rag_retrieval.eval.metrics import mean_metrics, query_metrics, rank_by_scores  # noqa: E402
from rag_retrieval.eval.significance import compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", required=True)
    parser.add_argument("--reranker", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--reranker-max-length", type=int, default=128)
    parser.add_argument("--output")
    args = parser.parse_args()
    from rag_retrieval import Reranker
    from rag_retrieval.models import BiEncoder

    ev = RerankEvaluator(args.data, args.max_queries, k_values=[1, 10])
    clock = time.time()
    first = ev.scores(BiEncoder.from_pretrained(args.embedder))
    first_seconds = time.time() - clock
    ranker = Reranker(args.reranker, max_length=args.reranker_max_length)
    alone, piped, clock = [], [], time.time()
    for ex, scores in zip(ev.examples, first):
        order = rank_by_scores(scores)
        alone.append(query_metrics([ex.labels[i] for i in order], [1, 10], ex.labels))
        head = order[: args.top]
        rescored = ranker.compute_score([(ex.query, ex.docs[i]) for i in head])
        head = [head[j] for j in rank_by_scores(rescored)]
        piped.append(query_metrics([ex.labels[i] for i in head + order[args.top:]], [1, 10], ex.labels))
    out = {"embedder": {f"rerank_{k}": v for k, v in mean_metrics(alone).items()},
           "pipeline": {f"rerank_{k}": v for k, v in mean_metrics(piped).items()},
           "seconds_per_query": {"embedder": first_seconds / len(first), "reranker": (time.time() - clock) / len(first)}}
    columns = lambda rows: {f"rerank_{k}": [m[k] for m in rows] for k in rows[0]}  # noqa: E731
    out["pipeline_vs_embedder"] = compare(columns(alone), columns(piped), ["rerank_mrr@10", "rerank_ndcg@10"])
    print(json.dumps(out, indent=1))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
