#!/usr/bin/env python
"""Gradient caching (train.grad_cache_chunk): peak memory of embedding training by batch size.

The embedding recipe (configs/embedding/minilm_pkgdesc_cpu.yaml: all-MiniLM-L6-v2, 1 hard negative,
query 32 / passage 128 tokens, fp32) for --steps steps at each --batches size, with and without
caching (--chunk texts per chunk), each run in its own process under a --memory-gib address-space
limit (a run over it stops with an allocation error: reported as not fitting). Prints peak RSS and
seconds per step.

    .venv/bin/python benchmarks/bench_grad_cache.py                  # 64 / 256 / 1024, ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_grad_cache.py --batches 64 256 --chunk 32
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.harness import ROOT, bench_env, cpu_name  # noqa: E402


def worker(args) -> None:
    limit = int(args.memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from rag_retrieval.train.embedding import main

    overrides = [f"train.output_dir={args.out}.model", f"train.per_device_train_batch_size={args.batch}",
                 f"train.max_steps={args.steps}", f"data.max_examples={args.batch * args.steps}",
                 f"train.grad_cache_chunk={args.chunk}", "eval.before_training=false", "eval.rerank_path=null",
                 "train.save_strategy=no", "train.logging_steps=1", "train.overwrite_output_dir=true"]
    t0 = time.perf_counter()
    main(["--config", "configs/embedding/minilm_pkgdesc_cpu.yaml", *overrides])
    with open(args.out, "w") as f:
        json.dump({"seconds": time.perf_counter() - t0,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--chunk", type=int, default=64, help="texts per chunk of the cached runs")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--memory-gib", type=float, default=18.0, help="address-space limit of each run")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in args.batches:
            for chunk in (0, args.chunk):
                out = os.path.join(tmp, f"{batch}-{chunk}.json")
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--batch", str(batch), "--chunk",
                       str(chunk), "--steps", str(args.steps), "--memory-gib", str(args.memory_gib), "--out", out]
                run = subprocess.run(cmd, cwd=ROOT, env=bench_env(), capture_output=True, text=True)
                result = json.load(open(out)) if run.returncode == 0 and os.path.isfile(out) else None
                if result is None and "memory" not in (run.stderr + run.stdout).lower():
                    sys.exit(f"batch {batch} chunk {chunk} failed:\n{run.stderr[-4000:]}")
                rows.append((batch, chunk, result))
    print(f"\nEmbedding training peak memory, all-MiniLM-L6-v2, pkgdesc (query 32 / passage 128 tokens, 1 hard "
          f"negative), fp32, {args.steps} step(s), {bench_env()['OMP_NUM_THREADS']} CPU threads, {cpu_name()}, "
          f"limit {args.memory_gib:g} GiB per run\n")
    print("| batch (queries) | grad cache chunk | peak RSS MB | seconds per step (incl. start) |")
    print("|---|---|---|---|")
    for batch, chunk, r in rows:
        cells = (f"{r['peak_rss_mb']:.0f} | {r['seconds'] / args.steps:.1f}" if r else
                 f"did not fit in {args.memory_gib:g} GiB | ")
        print(f"| {batch} | {chunk or 'off'} | {cells} |")


if __name__ == "__main__":
    main()
