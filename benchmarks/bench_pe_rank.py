#!/usr/bin/env python
"""Per-query reranking latency on one LLM backbone: PE-Rank (one embedding token per passage,
constrained decoding) vs the pointwise LLM reranker (one forward pass per passage) vs a text
listwise prompt (RankGPT style: every passage's text in the prompt, the permutation generated as
text, "[3] > [1] > ...", 5 tokens per passage).

All three use the same backbone and the same sliding windows (20 candidates, step 10) for the two
listwise methods; passages are cut to --passage-tokens. Candidates come from the first pkgdesc
test queries (a query's 31 candidates, then other queries' candidates to reach 100). Latency, not
quality, is measured: the models are untrained (speed does not depend on the weights), and the text
listwise method generates its full permutation's worth of tokens. Prints a table with ratios.

    .venv/bin/python benchmarks/bench_pe_rank.py                        # SmolLM2-135M + MiniLM, 20 and 100
    .venv/bin/python benchmarks/bench_pe_rank.py --backbone tiny-qwen2 --embedder tiny-bert   # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEXT_PROMPT = ("I will give you {n} passages, each with an identifier in []. Rank them by their relevance to the "
               "search query: {query}\n{passages}\nSearch query: {query}\nRank the {n} passages above by relevance, "
               "most relevant first, as identifiers, e.g. [2] > [1]. Answer:")


def candidates(path: str, queries: int, n: int) -> list:
    from rag_retrieval.data.sources import open_text

    with open_text(path) as f:
        rows = [json.loads(line) for line in f]
    pool = [d for r in rows for d in r["pos"] + r["neg"]]
    out = []
    for r in rows[:queries]:
        docs = r["pos"] + r["neg"]
        extra = [d for d in pool if d not in docs]
        out.append((r["query"], (docs + extra)[:n]))
    return out


def windows(n: int, size: int, step: int) -> list:
    """(start, end) of the sliding windows, back to front (as PE-Rank's rank())."""
    spans, end = [], n
    while True:
        start = max(0, end - size)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


def text_listwise(llm, tokenizer, query: str, docs: list, size: int, step: int, passage_tokens: int) -> None:
    import torch

    for start, end in windows(len(docs), size, step):
        window = docs[start:end]
        cut = [tokenizer.decode(tokenizer(d, add_special_tokens=False)["input_ids"][:passage_tokens]) for d in window]
        text = TEXT_PROMPT.format(n=len(window), query=query,
                                  passages="\n".join(f"[{i + 1}] {d}" for i, d in enumerate(cut)))
        ids = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            llm.generate(**ids, max_new_tokens=5 * len(window), min_new_tokens=5 * len(window), do_sample=False,
                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="smollm2")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--candidates", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--queries", type=int, default=2, help="queries timed per setting (mean latency)")
    parser.add_argument("--passage-tokens", type=int, default=128)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16, help="pointwise scoring batch")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for all three")
    parser.add_argument("--data", default=os.path.join(ROOT, "data", "pkgdesc", "test.jsonl"))
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM

    from rag_retrieval.infer import LLMRanker
    from rag_retrieval.models import PERank
    from rag_retrieval.models.hub import resolve_model_path

    torch.manual_seed(0)
    pe = PERank.from_parts(args.backbone, args.embedder, window_size=args.window, window_step=args.step).eval()
    pe.embedder.passage_max_len = args.passage_tokens
    pointwise = LLMRanker(args.backbone, device="cpu", batch_size=args.batch_size, max_length=args.passage_tokens,
                          dtype="bf16" if args.bf16 else None)
    llm = AutoModelForCausalLM.from_pretrained(resolve_model_path(args.backbone)).eval()
    tokenizer = pe.tokenizer
    methods = {
        "PE-Rank (embedding tokens)": lambda q, d: pe.rank(q, d),
        "pointwise LLM reranker": lambda q, d: pointwise.rerank(q, d),
        "text listwise prompt": lambda q, d: text_listwise(llm, tokenizer, q, d, args.window, args.step,
                                                           args.passage_tokens),
    }
    rows = []
    for n in args.candidates:
        sets = candidates(args.data, args.queries, n)
        for name, run in methods.items():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                run(*sets[0][:1], sets[0][1][:2])  # warm-up (allocations, first kernels)
                start = time.perf_counter()
                for query, docs in sets:
                    run(query, docs)
            rows.append((n, name, (time.perf_counter() - start) / len(sets)))
            print(f"  {n} candidates, {name}: {rows[-1][2]:.2f} s/query", flush=True)
    print(f"\nbackbone {args.backbone}, embedder {args.embedder}, passages cut to {args.passage_tokens} tokens, "
          f"windows {args.window}/{args.step}, {'bf16' if args.bf16 else 'fp32'}, torch threads {torch.get_num_threads()}\n")
    print("| candidates | method | s / query | x PE-Rank |\n|---|---|---|---|")
    for n, name, secs in rows:
        base = next(s for m, nm, s in rows if m == n and nm.startswith("PE-Rank"))
        print(f"| {n} | {name} | {secs:.2f} | {secs / base:.1f}x |")


if __name__ == "__main__":
    main()
