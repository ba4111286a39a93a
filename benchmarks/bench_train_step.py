"""Seconds per reranker training step on CPU by attention implementation and precision.

One step of the CPU reranker recipes (16 queries x 8 passages, pairs cut to 64 tokens, listwise CE,
forward + backward, no optimizer) for the standard cross-encoder (all-MiniLM-L6-v2 + a new head) and
the two-stage recipe's split cross-encoder (4 separate layers, 2 gated joint layers), with PyTorch's
SDPA attention (transformers' default) and eager attention (matrix products and a softmax), in fp32
and under bf16 autocast. The same pairs, one process, the median of --steps timed steps after 2
warm-up steps; the largest score difference between the two attention kinds shows they compute the
same thing.

    .venv/bin/python benchmarks/bench_train_step.py [--steps 3] [--max-length 64]
"""

from __future__ import annotations

import argparse
import itertools
import json
import lzma
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")

from benchmarks.harness import ROOT, bench_env, cpu_name  # noqa: E402

QUERIES, GROUP = 16, 8


def load_pairs(path: str = "data/pkgdesc/train.jsonl.xz") -> tuple:
    """The first queries of the recipe's training file, each with its positive and first negatives."""
    with lzma.open(os.path.join(ROOT, path), "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in itertools.islice(f, QUERIES)]
    queries = [r["query"] for r in records for _ in range(GROUP)]
    docs = [d for r in records for d in (r["pos"][:1] + r["neg"])[:GROUP]]
    return queries, docs


def build(model: str, attention: str, max_length: int):
    from rag_retrieval.models import CrossEncoder

    import torch

    torch.manual_seed(0)  # the same new head for both attention kinds
    dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    split = {"separate_layers": 4, "joint_gate": True} if model == "split" else {}
    ce = CrossEncoder.from_pretrained("minilm", max_length=max_length, trainable=True, attn_implementation=attention,
                                      config_overrides=dropout, **split)
    ce.train()
    return ce


def time_steps(ce, features, bf16: bool, steps: int) -> tuple:
    import torch

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            scores = ce(**features)["scores"]
        torch.nn.functional.cross_entropy(scores.float().view(QUERIES, GROUP),
                                          torch.zeros(QUERIES, dtype=torch.long)).backward()
        ce.zero_grad(set_to_none=True)
        return scores.detach().float()

    for _ in range(2):
        step()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        scores = step()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(int(bench_env()["OMP_NUM_THREADS"]))
    queries, docs = load_pairs()
    rows = []
    for model, bf16 in itertools.product(("standard", "split"), (False, True)):
        timings = {}
        for attention in ("sdpa", "eager"):
            ce = build(model, attention, args.max_length)
            timings[attention] = time_steps(ce, ce.tokenize(queries, docs), bf16, args.steps)
        diff = float((timings["sdpa"][1] - timings["eager"][1]).abs().max())
        rows.append((model, "bf16" if bf16 else "fp32", timings["sdpa"][0], timings["eager"][0], diff))
    print(f"\nOne reranker training step ({QUERIES} queries x {GROUP} passages, {args.max_length} tokens), "
          f"{torch.get_num_threads()} CPU threads, {cpu_name()}, median of {args.steps} steps\n")
    print("| model | precision | SDPA s/step | eager s/step | eager speed-up | max score diff |")
    print("|---|---|---|---|---|---|")
    names = {"standard": "cross-encoder (new head)", "split": "split, 4 separate + 2 gated joint layers"}
    for model, precision, sdpa, eager, diff in rows:
        print(f"| {names[model]} | {precision} | {sdpa:.2f} | {eager:.2f} | {sdpa / eager:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
