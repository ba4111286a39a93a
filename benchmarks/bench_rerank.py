#!/usr/bin/env python
"""Reranker inference: rag-retrieval's Reranker vs sentence-transformers CrossEncoder.predict vs
FlagEmbedding FlagReranker.compute_score.

Same cross-encoder checkpoint (all-MiniLM-L6-v2 with a one-logit head, saved once; or --model),
same query-document pairs (the candidates of the first test queries of data/pkgdesc, lengths from
a few to several hundred tokens), same max_length and batch size (ours also caps a batch at 4,096
padded tokens on CPU, its default), fp32 on CPU. Each library runs in its own process (clean peak
memory), after one warm-up batch; the clock covers tokenisation and the forward passes, and the
fastest of ``--repeats`` passes (default 2) counts for every library. Scores are compared with
ours (max absolute difference). Prints a table with ratios, the model FLOPs of the work per second
and their share of this machine's fp32 matmul peak, probed first (harness.matmul_peak); --device cuda
runs it all on a GPU.

    .venv/bin/python benchmarks/bench_rerank.py                     # 2,000 pairs, ~4 min on 2 cores
    .venv/bin/python benchmarks/bench_rerank.py --pairs 500 --model outputs/reranker/minilm_pkgdesc
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.harness import (ROOT, add_common_args, matmul_peak, model_flops, print_table, run_worker,  # noqa: E402
                                run_workers, token_lengths)

CONTENDERS = ("sentence-transformers", "FlagEmbedding", "rag-retrieval")


def load_pairs(path: str, n: int) -> list:
    """The first ``n`` (query, candidate) pairs of a pos_neg file, query by query."""
    from rag_retrieval.data.sources import open_text

    pairs = []
    with open_text(path) as f:
        for line in f:
            rec = json.loads(line)
            pairs += [(rec["query"], d) for d in rec["pos"] + rec["neg"]]
            if len(pairs) >= n:
                return pairs[:n]
    return pairs


def make_scorer(which: str, args):
    """A function pairs -> list of raw scores, with the model loaded."""
    if which == "rag-retrieval":
        from rag_retrieval import Reranker

        model = Reranker(args.model, device=args.device, batch_size=args.batch_size, max_length=args.max_length)
        return lambda pairs: model.compute_score(pairs)
    if which == "sentence-transformers":
        import torch
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(args.model, device=args.device, max_length=args.max_length, activation_fn=torch.nn.Identity())
        return lambda pairs: [float(s) for s in model.predict(pairs, batch_size=args.batch_size,
                                                             show_progress_bar=False)]
    from FlagEmbedding import FlagReranker

    model = FlagReranker(args.model, use_fp16=False, devices=args.device, batch_size=args.batch_size,
                         max_length=args.max_length)
    return lambda pairs: [float(s) for s in model.compute_score([list(p) for p in pairs])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(ROOT, "data/pkgdesc/test.jsonl.xz"))
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--model", help="a cross-encoder folder (default: MiniLM with a seeded new head)")
    parser.add_argument("--max-length", type=int, default=512)
    add_common_args(parser, CONTENDERS, rounds=1)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args, load_pairs(args.data, args.pairs), make_scorer)

    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            import torch

            from rag_retrieval.models import CrossEncoder

            torch.manual_seed(0)
            args.model = os.path.join(tmp, "model")
            CrossEncoder.from_pretrained("minilm").save_pretrained(args.model)
        results = run_workers(__file__, CONTENDERS, ["--model", args.model, "--data", args.data, "--pairs",
                                                     str(args.pairs), "--max-length", str(args.max_length),
                                                     "--batch-size", str(args.batch_size), "--repeats",
                                                     str(args.repeats), "--device", args.device], tmp, args.rounds)
        flops = model_flops(args.model, token_lengths(args.model, load_pairs(args.data, args.pairs), args.max_length))

    print_table(results, CONTENDERS,
                f"Cross-encoder inference, {len(results['rag-retrieval']['result'])} pairs of data/pkgdesc test "
                f"candidates, max_length {args.max_length}, batch {args.batch_size}",
                "pairs", args, flops, matmul_peak("float32", args.device))


if __name__ == "__main__":
    main()
