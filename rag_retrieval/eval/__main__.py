"""Evaluate a model and print a metrics table.

    python -m rag_retrieval.eval --model outputs/embedding/minilm_pkgdesc --rerank data/pkgdesc/test.jsonl
    python -m rag_retrieval.eval --model minilm --corpus corpus.jsonl --queries test_queries.jsonl --max-queries 100
    python -m rag_retrieval.eval --model minilm --model outputs/x --rerank data/pkgdesc/test.jsonl   # compare
"""

from __future__ import annotations

import argparse
import json
import sys

from ..data.io import DataError
from .evaluators import RerankEvaluator, RetrievalEvaluator, format_table


def load_model(name: str, dtype=None):
    """A model for evaluation: a bi-encoder (sentence-transformers layout or alias) or any ranker
    the inference API loads (cross-encoders, LLM rerankers, ColBERT; ``dtype``: their autocast)."""
    import os

    from ..models import BiEncoder
    from ..models.hub import resolve_model_path

    path = resolve_model_path(name)
    if os.path.isfile(os.path.join(path, "modules.json")) or not os.path.isdir(path):
        return BiEncoder.from_pretrained(name)
    from ..infer import Reranker

    return Reranker(name, dtype=dtype)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m rag_retrieval.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="model path or alias; repeat to compare")
    parser.add_argument("--rerank", help="pos_neg JSONL: rank positives among pos+neg")
    parser.add_argument("--format", default="pos_neg", choices=["pos_neg", "hits"], help="format of --rerank")
    parser.add_argument("--corpus", help="retrieval: corpus JSONL {id, text}")
    parser.add_argument("--queries", help="retrieval: queries JSONL {qid, query, pos_ids}")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], help="rankers: autocast (default: bf16 on GPU, "
                                                                       "fp32 on CPU)")
    parser.add_argument("--output", help="write the metrics as JSON here")
    args = parser.parse_args(argv)
    if not args.rerank and not args.corpus:
        parser.error("give --rerank FILE and/or --corpus FILE --queries FILE")
    if bool(args.corpus) != bool(args.queries):
        parser.error("--corpus and --queries go together")
    evaluators = []  # files are read (and checked) before any model loads
    if args.rerank:
        evaluators.append(RerankEvaluator(args.rerank, args.max_queries, args.k, args.batch_size, fmt=args.format))
    if args.corpus:
        evaluators.append(RetrievalEvaluator(args.corpus, args.queries, args.max_queries, args.k, args.batch_size))
    results = {}  # a table row per model
    for name in args.model:
        model = load_model(name, args.dtype)
        results[name] = {k: v for ev in evaluators for k, v in ev(model).items()}
    print(format_table(results))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    try:
        main()
    except DataError as err:
        sys.exit(f"error: {err}")
