#!/usr/bin/env python
"""Reranker inference: rag-retrieval's Reranker vs sentence-transformers CrossEncoder.predict vs
FlagEmbedding FlagReranker.compute_score.

Same cross-encoder checkpoint (all-MiniLM-L6-v2 with a one-logit head, saved once; or --model),
same query-document pairs (the candidates of the first test queries of data/pkgdesc, lengths from
a few to several hundred tokens), same max_length and batch size (ours also caps a batch at 4,096
padded tokens on CPU, its default), fp32 on CPU. Each library runs in its own process (clean peak
memory), after one warm-up batch; the clock covers tokenisation and the forward passes, and the
fastest of ``--repeats`` passes (default 2) counts for every library. Scores are compared with
ours (max absolute difference). Prints a table with ratios.

    .venv/bin/python benchmarks/bench_rerank.py                     # 2,000 pairs, ~4 min on 2 cores
    .venv/bin/python benchmarks/bench_rerank.py --pairs 500 --model outputs/reranker/minilm_pkgdesc
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
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

        model = Reranker(args.model, device="cpu", batch_size=args.batch_size, max_length=args.max_length)
        return lambda pairs: model.compute_score(pairs)
    if which == "sentence-transformers":
        import torch
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(args.model, device="cpu", max_length=args.max_length, activation_fn=torch.nn.Identity())
        return lambda pairs: [float(s) for s in model.predict(pairs, batch_size=args.batch_size,
                                                             show_progress_bar=False)]
    from FlagEmbedding import FlagReranker

    model = FlagReranker(args.model, use_fp16=False, devices="cpu", batch_size=args.batch_size,
                         max_length=args.max_length)
    return lambda pairs: [float(s) for s in model.compute_score([list(p) for p in pairs])]


def worker(which: str, args) -> None:
    pairs = load_pairs(args.data, args.pairs)
    score = make_scorer(which, args)
    score(pairs[: args.batch_size])  # warm-up: first-call allocations and lazy imports
    times = []
    for _ in range(args.repeats):  # the fastest pass: the least disturbed by the rest of the machine
        t0 = time.perf_counter()
        scores = score(pairs)
        times.append(time.perf_counter() - t0)
    seconds = min(times)
    with open(args.out, "w") as f:
        json.dump({"seconds": seconds, "scores": scores,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(ROOT, "data/pkgdesc/test.jsonl.xz"))
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--model", help="a cross-encoder folder (default: MiniLM with a seeded new head)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per library; the fastest counts")
    parser.add_argument("--worker", choices=CONTENDERS)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args)

    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            import torch

            from rag_retrieval.models import CrossEncoder

            torch.manual_seed(0)
            args.model = os.path.join(tmp, "model")
            CrossEncoder.from_pretrained("minilm").save_pretrained(args.model)
        results = {}
        for which in CONTENDERS:
            out = os.path.join(tmp, f"{which}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", which, "--out", out, "--model", args.model,
                   "--data", args.data, "--pairs", str(args.pairs), "--max-length", str(args.max_length),
                   "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
            run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"{which} failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
            with open(out) as f:
                results[which] = json.load(f)

    import numpy as np

    ours = results["rag-retrieval"]
    n = len(ours["scores"])
    print(f"\nCross-encoder inference, {n} pairs of data/pkgdesc test candidates, max_length {args.max_length}, "
          f"batch {args.batch_size}, fp32, CPU threads {env['OMP_NUM_THREADS']}, fastest of {args.repeats} passes\n")
    print("| library | seconds | pairs/s | peak RSS MB | max abs score diff vs ours |")
    print("|---|---|---|---|---|")
    for which in CONTENDERS:
        r = results[which]
        diff = float(np.max(np.abs(np.array(r["scores"]) - np.array(ours["scores"]))))
        print(f"| {which} | {r['seconds']:.1f} | {n / r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {diff:.1e} |")
    fastest = min(CONTENDERS[:2], key=lambda w: results[w]["seconds"])
    print(f"| ours vs the faster other ({fastest}) | | {results[fastest]['seconds'] / ours['seconds']:.2f}x | "
          f"{ours['peak_rss_mb'] / results[fastest]['peak_rss_mb']:.2f}x | |")


if __name__ == "__main__":
    main()
