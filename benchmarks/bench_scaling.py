#!/usr/bin/env python
"""Training throughput at 1 and 2 (or more) processes, and GPU bf16 step time and memory.

Each run is a real recipe launch (``recipes/launch.sh``, torchrun) of a kind's shipped config for a
fixed number of steps at the same global batch (per-device batch = global / processes), without
evaluation or checkpoints. The Trainer's own clock (``train_runtime``, the training loop only,
not model loading) gives samples/s; its memory tracker (``skip_memory_metrics=false``) gives the
memory from the Trainer's start to the training peak (on a GPU that includes the model, moved
there by the Trainer; on CPU the model loaded before is not counted). Prints a table with the scaling ratio against one process.

CPU (default): the CPU configs (MiniLM), the machine's cores split between the processes
(OMP_NUM_THREADS = cores / processes), so the ratio shows what data parallelism buys on one box:

    .venv/bin/python benchmarks/bench_scaling.py                       # embedding + reranker, 1 vs 2, ~6 min
    .venv/bin/python benchmarks/bench_scaling.py --kinds colbert --steps 10 --procs 1 2

GPU (``--gpu``): the GPU configs in bf16 (one process per GPU for the counts in --procs), e.g. on a
machine with the models cached:

    .venv/bin/python benchmarks/bench_scaling.py --gpu --procs 1 8
    .venv/bin/python benchmarks/bench_scaling.py --gpu --procs 1 --set model.model_name_or_path=minilm
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {  # kind -> (CPU config, GPU config)
    "embedding": ("configs/embedding/minilm_pkgdesc_cpu.yaml", "configs/embedding/bge_base_gpu.yaml"),
    "reranker": ("configs/reranker/minilm_pkgdesc_cpu.yaml", "configs/reranker/bge_reranker_v2_m3_gpu.yaml"),
    "colbert": ("configs/colbert/minilm_pkgdesc_cpu.yaml", "configs/colbert/bge_m3_gpu.yaml"),
    "llm_reranker": ("configs/llm_reranker/smollm2_pkgdesc_cpu.yaml", "configs/llm_reranker/qwen3_0.6b_gpu.yaml"),
}


def train_metrics(output: str) -> dict:
    """The Trainer's final metrics (train_runtime, ..., memory) from the run's log: its dict, or the
    progress line's ``key value`` pairs (the logger's form when the output is not a terminal)."""
    for line in reversed(output.splitlines()):
        if "'train_runtime'" in line:
            text = line[line.index("{"): line.rindex("}") + 1]
            return {k: float(v) for k, v in ast.literal_eval(text).items()}
        if "train_runtime " in line:
            words = line[line.index("train_runtime "):].split()
            out = {}
            for key, value in zip(words[::2], words[1::2]):
                try:
                    out[key] = float(value)
                except ValueError:
                    break
            return out
    raise RuntimeError("no train_runtime in the run's output:\n" + output[-3000:])


def run(kind: str, procs: int, args, port: int) -> dict:
    config = CONFIGS[kind][1 if args.gpu else 0]
    threads = args.threads or max(1, (os.cpu_count() or 1) // procs)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"train.output_dir={tmp}/run", f"train.max_steps={args.steps}", "train.save_strategy=no",
                     f"train.per_device_train_batch_size={args.batch // procs}", "train.gradient_accumulation_steps=1",
                     "eval.before_training=false", "eval.rerank_path=null", "eval.corpus_path=null",
                     "eval.queries_path=null",
                     "train.skip_memory_metrics=false", f"train.logging_steps={args.steps}", "train.report_to=none",
                     *(["train.bf16=true", "train.use_cpu=false"] if args.gpu else ["train.use_cpu=true"]),
                     *args.set]
        env = dict(os.environ, NPROC=str(procs), MASTER_PORT=str(port), OMP_NUM_THREADS=str(threads),
                   CONFIG=config, PYTHON=sys.executable, HF_HUB_OFFLINE="1")
        out = subprocess.run(["bash", "recipes/launch.sh", kind, config, *overrides], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{kind} with {procs} process(es) failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    metrics = train_metrics(out.stdout + out.stderr)
    device = "gpu" if args.gpu else "cpu"
    peak = sum(metrics.get(f"{stage}_mem_{device}_{what}_delta", 0.0)
               for stage, what in (("init", "alloc"), ("train", "alloc"), ("train", "peaked"))) / 2**20
    return {"threads": threads, "seconds": metrics["train_runtime"], "samples_s": metrics["train_samples_per_second"],
            "step_s": metrics["train_runtime"] / args.steps, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=["embedding", "reranker"], choices=list(CONFIGS))
    parser.add_argument("--procs", nargs="+", type=int, default=[1, 2], help="process counts (first is the base)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--batch", type=int, default=16, help="global batch (queries per step)")
    parser.add_argument("--threads", type=int, help="OMP threads per process (default: cores / processes)")
    parser.add_argument("--gpu", action="store_true", help="the GPU configs in bf16, one process per GPU")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides, e.g. data.group_size=4")
    args = parser.parse_args()
    if any(args.batch % p for p in args.procs):
        sys.exit(f"--batch {args.batch} must divide by every process count {args.procs}")

    rows = []
    for k, kind in enumerate(args.kinds):
        base = None
        for i, procs in enumerate(args.procs):
            r = run(kind, procs, args, port=29650 + 10 * k + i)
            base = base or r
            rows.append((kind, procs, r, r["samples_s"] / base["samples_s"]))
            print(f"{kind} x{procs}: {r['samples_s']:.1f} samples/s", file=sys.stderr)

    import torch

    if args.gpu and torch.cuda.is_available():
        machine = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}, bf16"
    elif args.gpu:
        machine = "no GPU visible: the GPU configs ran on the CPU, bf16 autocast"
    else:
        machine = f"CPU, {os.cpu_count()} cores, fp32/bf16 per config"
    print(f"\nTraining throughput, {args.steps} steps, global batch {args.batch} queries, {machine}\n")
    mem = "peak GPU memory MB per process" if args.gpu else "memory added by training MB per process"
    print(f"| kind | processes | threads each | s/step | samples/s | scaling vs 1st | {mem} |")
    print("|---|---|---|---|---|---|---|")
    for kind, procs, r, ratio in rows:
        print(f"| {kind} | {procs} | {r['threads']} | {r['step_s']:.2f} | {r['samples_s']:.1f} | {ratio:.2f}x | "
              f"{r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
