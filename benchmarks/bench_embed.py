#!/usr/bin/env python
"""Embedding inference: rag-retrieval's Embedder vs sentence-transformers SentenceTransformer.encode.

Same model (all-MiniLM-L6-v2, or --model), same passages (the first --passages of data/pkgdesc's
corpus, a few to several hundred tokens), same max length (the model's, 256 for MiniLM) and batch size
(ours also caps a batch at 4,096 padded tokens on CPU, its default), fp32 on CPU. Each library runs in
its own process after a warm-up batch; the clock covers tokenisation and the forward passes, and the
fastest of --repeats passes counts. Vectors are compared with ours (max absolute difference). The
table also gives the model FLOPs of the work per second and their share of this machine's fp32 matmul
peak, probed first (harness.matmul_peak); --device cuda runs it all on a GPU.

    .venv/bin/python benchmarks/bench_embed.py                    # 2,000 passages, ~5 min on 2 cores
    .venv/bin/python benchmarks/bench_embed.py --passages 500 --model outputs/embedding/minilm_pkgdesc
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

CONTENDERS = ("sentence-transformers", "rag-retrieval")


def load_passages(path: str, n: int) -> list:
    from rag_retrieval.data.sources import open_text

    out = []
    with open_text(path) as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) >= n:
                break
    return out


def make_encoder(which: str, args):
    """A function passages -> list of vectors, with the model loaded."""
    if which == "rag-retrieval":
        from rag_retrieval import Embedder

        model = Embedder(args.model, device=args.device, batch_size=args.batch_size)
        return lambda texts: model.encode(texts).tolist()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device=args.device)
    return lambda texts: model.encode(texts, batch_size=args.batch_size, show_progress_bar=False).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(ROOT, "data/pkgdesc/corpus.jsonl.xz"))
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--model", default=None, help="an embedding model folder (default: all-MiniLM-L6-v2)")
    add_common_args(parser, CONTENDERS, rounds=2)
    args = parser.parse_args()
    from rag_retrieval.models.hub import resolve_model_path

    args.model = resolve_model_path(args.model or "minilm")
    if args.worker:
        return run_worker(args, load_passages(args.data, args.passages), make_encoder)
    with tempfile.TemporaryDirectory() as tmp:
        results = run_workers(__file__, CONTENDERS, ["--model", args.model, "--data", args.data, "--passages",
                                                     str(args.passages), "--batch-size", str(args.batch_size),
                                                     "--repeats", str(args.repeats), "--device", args.device],
                              tmp, args.rounds)
    from rag_retrieval.models import BiEncoder

    max_len = BiEncoder.from_pretrained(args.model).passage_max_len
    flops = model_flops(args.model, token_lengths(args.model, load_passages(args.data, args.passages), max_len))
    print_table(results, CONTENDERS,
                f"Embedding inference, {len(results['rag-retrieval']['result'])} passages of data/pkgdesc's corpus, "
                f"batch {args.batch_size}",
                "passages", args, flops, matmul_peak("float32", args.device))


if __name__ == "__main__":
    main()
