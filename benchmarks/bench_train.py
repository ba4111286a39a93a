#!/usr/bin/env python
"""Training throughput: rag-retrieval's trainer vs sentence-transformers'.

--kind reranker (default): vs CrossEncoderTrainer. Same model (all-MiniLM-L6-v2 with a new one-logit
head), same data (the first queries of data/pkgdesc/train.jsonl.xz, 1 positive + G-1 hard negatives
each, as labelled pairs), same loss (pointwise binary cross-entropy), batch, learning rate, schedule,
precision (--bf16: bf16 autocast in both) and number of steps; dropout as the checkpoint has it (0.1)
in both. Ours splits each batch into length-bucketed sub-batches (--length-buckets; same loss, fewer
pad tokens) and can give the new head its own rate (--head-lr; default: the body's).

--kind embedding: vs SentenceTransformerTrainer + MultipleNegativesRankingLoss. Same model
(all-MiniLM-L6-v2, mean pooling, normalised), same (query, positive, hard negative) triplets of the
first queries, same loss (InfoNCE over in-batch and hard negatives, scale 20 = temperature 0.05),
batch, learning rate, schedule, precision, steps and truncation (--max-length for queries and passages
alike, as sentence-transformers has one); pairs/s counts each query's two labelled pairs (positive and
hard negative), the same for both. Ours splits queries and passages into --length-buckets sub-batches
of similar length too (same vectors and loss, fewer pad tokens).

Each trainer runs in its own process (clean peak memory) and is timed by its own Trainer (train_runtime:
model loading and data reading left out); the trained models are then scored by the
same evaluator (MRR@10 on the first test queries). Prints a table with the ratios.

    .venv/bin/python benchmarks/bench_train.py                       # defaults below, ~8 min on 2 cores
    .venv/bin/python benchmarks/bench_train.py --steps 60 --eval-queries 300
    .venv/bin/python benchmarks/bench_train.py --kind embedding --batch-queries 32 --max-length 128
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def train_seconds(run) -> float:
    """Seconds of ``Trainer.train`` itself (its ``train_runtime``) while ``run()`` runs: the same clock for
    both trainers, model loading and data reading left out."""
    import transformers

    train, seen = transformers.Trainer.train, []

    def timed(self, *args, **kwargs):
        out = train(self, *args, **kwargs)
        seen.append(out.metrics["train_runtime"])
        return out

    transformers.Trainer.train = timed
    try:
        run()
    finally:
        transformers.Trainer.train = train
    return seen[-1]


def pairs_from(path: str, n_queries: int, group: int) -> list:
    """(query, doc, label) rows: per query, its positive then the first G-1 negatives (fixed, no resampling)."""
    rows = []
    from rag_retrieval.data.sources import open_text

    with open_text(path) as f:
        for line, _ in zip(f, range(n_queries)):
            rec = json.loads(line)
            rows.append((rec["query"], rec["pos"][0], 1.0))
            rows += [(rec["query"], d, 0.0) for d in rec["neg"][: group - 1]]
    return rows


def fixed_groups(args, out_dir, negatives: int) -> str:
    """The first queries' positive and first ``negatives`` hard negatives, as a pos_neg file: the same
    examples for both trainers, no resampling."""
    from rag_retrieval.data.sources import open_text

    data = os.path.join(out_dir, "fixed.jsonl")
    with open_text(args.train) as f, open(data, "w") as g:
        for line, _ in zip(f, range(args.train_queries)):
            rec = json.loads(line)
            g.write(json.dumps({"query": rec["query"], "pos": rec["pos"][:1], "neg": rec["neg"][:negatives]}) + "\n")
    return data


def run_ours(args, out_dir) -> float:
    """Our trainer with a fixed group per query, so both trainers see the same pairs in the same batches."""
    from rag_retrieval.train.reranker import main

    data = fixed_groups(args, out_dir, args.group - 1)
    return train_seconds(lambda: main(["--config", "configs/reranker/minilm_pkgdesc_cpu.yaml", f"data.train_path={data}",
          f"model.model_name_or_path={args.model}",
          f"data.group_size={args.group}", f"data.passage_max_len={args.max_length}", "loss.name=bce",
          "eval.rerank_path=null", f"train.output_dir={out_dir}/model", f"train.max_steps={args.steps}",
          f"train.per_device_train_batch_size={args.batch_queries}", f"train.learning_rate={args.lr}",
          "train.warmup_steps=0", "train.save_strategy=no", "train.logging_steps=1000", "train.disable_tqdm=true",
          "train.lr_scheduler_type=linear", "train.seed=42", "train.overwrite_output_dir=true",
          f"data.length_buckets={args.length_buckets}", f"train.head_learning_rate={args.head_lr or args.lr}",
          f"train.bf16={str(args.bf16).lower()}", "model.config_overrides=null", "eval.max_length=null",
          f"train.use_cpu={str(args.device == 'cpu').lower()}"]))


def run_sentence_transformers(args, out_dir) -> float:
    import datasets
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from rag_retrieval.models.hub import resolve_model_path

    torch.manual_seed(42)
    rows = pairs_from(args.train, args.train_queries, args.group)
    ds = datasets.Dataset.from_dict({"query": [r[0] for r in rows], "doc": [r[1] for r in rows],
                                     "label": [r[2] for r in rows]})
    model = CrossEncoder(resolve_model_path(args.model), num_labels=1, max_length=args.max_length, device=args.device)
    targs = CrossEncoderTrainingArguments(
        output_dir=f"{out_dir}/st", per_device_train_batch_size=args.batch_queries * args.group,
        learning_rate=args.lr, max_steps=args.steps, warmup_steps=0, lr_scheduler_type="linear", seed=42,
        use_cpu=args.device == "cpu", report_to="none", save_strategy="no", logging_steps=1000, disable_tqdm=True,
        dataloader_drop_last=True, bf16=args.bf16)
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=ds, loss=BinaryCrossEntropyLoss(model))
    seconds = train_seconds(lambda: trainer.train())
    model.save_pretrained(f"{out_dir}/model")
    return seconds


def run_ours_embedding(args, out_dir) -> float:
    from rag_retrieval.train.embedding import main

    data = fixed_groups(args, out_dir, 1)
    return train_seconds(lambda: main(["--config", "configs/embedding/minilm_pkgdesc_cpu.yaml", f"data.train_path={data}", "data.group_size=2",
          f"model.model_name_or_path={args.model}",
          "data.max_examples=null", f"data.query_max_len={args.max_length}", f"data.passage_max_len={args.max_length}",
          "loss.matryoshka_dims=null", "loss.temperature=0.05", "eval.rerank_path=null", f"train.output_dir={out_dir}/model",
          f"train.max_steps={args.steps}", f"train.per_device_train_batch_size={args.batch_queries}",
          f"train.learning_rate={args.lr}", "train.warmup_steps=0", "train.save_strategy=no", "train.logging_steps=1000",
          "train.disable_tqdm=true", "train.lr_scheduler_type=linear", "train.seed=42", "train.overwrite_output_dir=true",
          f"train.bf16={str(args.bf16).lower()}", f"model.attn_implementation={args.attn or 'null'}",
          f"data.length_buckets={args.length_buckets}",
          f"train.use_cpu={str(args.device == 'cpu').lower()}"]))


def run_sentence_transformers_embedding(args, out_dir) -> float:
    import datasets
    import torch
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from rag_retrieval.models.hub import resolve_model_path

    torch.manual_seed(42)
    rows = [json.loads(line) for line in open(fixed_groups(args, out_dir, 1))]
    ds = datasets.Dataset.from_dict({"anchor": [r["query"] for r in rows], "positive": [r["pos"][0] for r in rows],
                                     "negative": [r["neg"][0] for r in rows]})
    kwargs = {"attn_implementation": args.attn} if args.attn else {}
    model = SentenceTransformer(resolve_model_path(args.model), device=args.device, model_kwargs=kwargs)
    model.max_seq_length = args.max_length
    targs = SentenceTransformerTrainingArguments(
        output_dir=f"{out_dir}/st", per_device_train_batch_size=args.batch_queries, learning_rate=args.lr,
        max_steps=args.steps, warmup_steps=0, lr_scheduler_type="linear", seed=42, use_cpu=args.device == "cpu",
        report_to="none",
        save_strategy="no", logging_steps=1000, disable_tqdm=True, dataloader_drop_last=True, bf16=args.bf16)
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=ds,
                                         loss=MultipleNegativesRankingLoss(model, scale=20.0))
    seconds = train_seconds(lambda: trainer.train())
    model.save_pretrained(f"{out_dir}/model")
    return seconds


RUNNERS = {("reranker", "ours"): run_ours, ("reranker", "sentence-transformers"): run_sentence_transformers,
           ("embedding", "ours"): run_ours_embedding,
           ("embedding", "sentence-transformers"): run_sentence_transformers_embedding}


def worker(which: str, args) -> None:
    out_dir = args.out_dir
    seconds = RUNNERS[args.kind, which](args, out_dir)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import torch

    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if args.device != "cpu" else None
    from rag_retrieval.eval.evaluators import RerankEvaluator
    from rag_retrieval.models import BiEncoder, CrossEncoder

    if args.kind == "embedding":
        model = BiEncoder.from_pretrained(f"{out_dir}/model", passage_max_len=args.max_length).to(args.device)
        pairs = args.steps * args.batch_queries * 2
    else:
        model = CrossEncoder.from_pretrained(f"{out_dir}/model", max_length=args.max_length).to(args.device)
        pairs = args.steps * args.batch_queries * args.group
    metrics = RerankEvaluator(args.test, args.eval_queries, k_values=[10], name="")(model)
    print("RESULT " + json.dumps({"seconds": seconds, "pairs_per_s": pairs / seconds, "peak_rss_mb": peak_mb,
                                  "peak_gpu_mb": gpu_mb, "mrr@10": metrics["mrr@10"]}), flush=True)


def training_flops(args) -> float:
    """Model FLOPs of the whole run (forward and backward of every text or pair it trains on, real
    tokens only; both trainers see the same examples, each once): harness.model_flops."""
    from benchmarks.harness import model_flops, token_lengths
    from rag_retrieval.models.hub import resolve_model_path

    model = resolve_model_path(args.model)
    if args.kind == "embedding":
        with tempfile.TemporaryDirectory() as tmp:
            rows = [json.loads(line) for line in open(fixed_groups(args, tmp, 1))]
        texts = [r["query"] for r in rows] + [r["pos"][0] for r in rows] + [r["neg"][0] for r in rows]
    else:
        texts = [(q, d) for q, d, _ in pairs_from(args.train, args.train_queries, args.group)]
    return model_flops(model, token_lengths(model, texts, args.max_length), backward=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["reranker", "embedding"], default="reranker")
    parser.add_argument("--attn", choices=["eager", "sdpa"], help="embedding: attention implementation of both "
                                                                  "(default: the model's, SDPA)")
    parser.add_argument("--train", default=os.path.join(ROOT, "data/pkgdesc/train.jsonl.xz"))
    parser.add_argument("--test", default=os.path.join(ROOT, "data/pkgdesc/test.jsonl.xz"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-queries", type=int, default=8)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--eval-queries", type=int, default=100)
    parser.add_argument("--length-buckets", type=int, default=4, help="ours: length-bucketed sub-batches (1 = off)")
    parser.add_argument("--head-lr", type=float, help="ours: learning rate of the new head (default: --lr)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast in both trainers (CPUs with bf16 units)")
    parser.add_argument("--model", default="minilm", help="the encoder both trainers start from (default: all-MiniLM-L6-v2)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: both trainers on it")
    parser.add_argument("--json", help="also write the table's numbers to this JSON file")
    parser.add_argument("--worker", choices=["ours", "sentence-transformers"])
    parser.add_argument("--out-dir")
    args = parser.parse_args()
    args.train_queries = args.steps * args.batch_queries
    if args.worker:
        return worker(args.worker, args)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    results = {}
    for which in ("sentence-transformers", "ours"):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--worker", which, "--out-dir", tmp] + sys.argv[1:]
            out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode != 0 or not lines:
                sys.exit(f"{which} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
            results[which] = json.loads(lines[-1][len("RESULT "):])
    st, ours = results["sentence-transformers"], results["ours"]
    precision = "bf16" if args.bf16 else "fp32"
    if args.kind == "embedding":
        theirs = "sentence-transformers SentenceTransformerTrainer + MultipleNegativesRankingLoss"
        print(f"\nEmbedding training, MiniLM, InfoNCE (in-batch + 1 hard negative, temperature 0.05), {args.steps} "
              f"steps x {args.batch_queries} queries (max_length {args.max_length}, lr {args.lr}, {precision}, attention "
              f"{args.attn or 'sdpa'}; ours: length_buckets {args.length_buckets}); MRR@10 on {args.eval_queries} test queries")
    else:
        theirs = "sentence-transformers CrossEncoderTrainer"
        print(f"\nReranker training, MiniLM + new head, BCE, {args.steps} steps x {args.batch_queries * args.group} pairs "
              f"(max_length {args.max_length}, lr {args.lr}, {precision}; ours: length_buckets {args.length_buckets}, "
              f"head lr {args.head_lr or args.lr}); MRR@10 on {args.eval_queries} test queries")
    from benchmarks.harness import device_name, matmul_peak, peak_fraction

    dtype = "bfloat16" if args.bf16 else "float32"
    flops, peak = training_flops(args), matmul_peak(dtype, args.device)
    gpu = args.device != "cpu"
    mem = "peak GPU MB" if gpu else "peak RSS MB"
    print(f"{device_name(args.device)}; measured {precision} matmul peak {peak / 1e9:.0f} GFLOP/s, model FLOPs of the "
          f"run (forward + backward, real tokens) {flops / 1e9:.0f} GFLOP\n")
    print(f"| trainer | train s | pairs/s | {mem} | GFLOP/s | % of {precision} peak | MRR@10 |")
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for name, r in ((theirs, st), ("rag-retrieval", ours)):
        r["peak_memory_mb"] = r["peak_gpu_mb"] if gpu else r["peak_rss_mb"]
        print(f"| {name} | {r['seconds']:.1f} | {r['pairs_per_s']:.1f} | {r['peak_memory_mb']:.0f} | "
              f"{peak_fraction(flops, r['seconds'], peak)} | {r['mrr@10']:.4f} |")
        rows[name] = dict(r, gflops=flops / r["seconds"] / 1e9, peak_fraction=flops / r["seconds"] / peak)
    print(f"| ratio (ours / theirs) | | {ours['pairs_per_s'] / st['pairs_per_s']:.2f}x | "
          f"{ours['peak_memory_mb'] / st['peak_memory_mb']:.2f}x | | | {ours['mrr@10'] - st['mrr@10']:+.4f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kind": args.kind, "device": device_name(args.device), "precision": precision,
                       "matmul_peak_gflops": peak / 1e9, "model_gflop": flops / 1e9, "trainers": rows,
                       "speedup": ours["pairs_per_s"] / st["pairs_per_s"]}, f, indent=1)


if __name__ == "__main__":
    main()
