"""What the benchmarks share: each contender in its own process (clean peak memory), the fastest of a
few timed passes, and its results as JSON."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_env() -> dict:
    """Offline, all cores unless OMP_NUM_THREADS says otherwise, no tokenizer threads."""
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
                HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def add_common_args(parser, contenders, rounds: int = 1) -> None:
    """--batch-size, --repeats, --rounds, --device, --json and the worker's --worker / --out."""
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: every library on it, fp32")
    parser.add_argument("--json", help="also write the table's numbers to this JSON file")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per library; the fastest counts")
    parser.add_argument("--rounds", type=int, default=rounds, help="alternating processes per library (A B A B ...)")
    parser.add_argument("--worker", choices=contenders)
    parser.add_argument("--out")


def run_worker(args, inputs: list, make_fn) -> None:
    """In the worker process: ``make_fn(name, args)`` loads the contender's model and returns
    ``inputs -> results``; one warm-up batch (first-call allocations, lazy imports), then the timed passes."""
    fn = make_fn(args.worker, args)
    fn(inputs[: args.batch_size])
    timed_passes(lambda: fn(inputs), args.repeats, args.out)


def timed_passes(fn, repeats: int, out_path: str, **extra) -> None:
    """Call ``fn()`` ``repeats`` times, write ``{"seconds": fastest, "result": last result,
    "peak_rss_mb", **extra}`` to ``out_path`` (the fastest pass: the least disturbed by the machine)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()  # plain Python numbers: a GPU has finished when they exist
        times.append(time.perf_counter() - t0)
    gpu = _gpu_peak_mb()
    with open(out_path, "w") as f:
        json.dump({"seconds": min(times), "result": result,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   **({"peak_gpu_mb": gpu} if gpu is not None else {}), **extra}, f)


def _gpu_peak_mb():
    """The process's peak CUDA memory (MB) where it used a GPU, else None."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def run_workers(script: str, contenders, common_args: list, tmp: str, rounds: int = 1) -> dict:
    """``python script --worker NAME --out FILE *common_args`` for each contender, one process each, in
    ``rounds`` alternating rounds (A B A B ...: a slow spell of a shared machine hits every contender);
    returns ``{name: the JSON of its fastest round}``; exits with the worker's output when one fails."""
    results: dict = {}
    for _ in range(rounds):
        for which in contenders:
            out = os.path.join(tmp, f"{which}.json")
            cmd = [sys.executable, os.path.abspath(script), "--worker", which, "--out", out, *common_args]
            run = subprocess.run(cmd, cwd=ROOT, env=bench_env(), capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"{which} failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
            with open(out) as f:
                result = json.load(f)
            if which not in results or result["seconds"] < results[which]["seconds"]:
                results[which] = result
    return results


def cpu_name() -> str:
    """The CPU model and its bf16 matrix units, for the table's caption."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    units = [u for u in ("amx_bf16", "avx512_bf16") if u in flags]
    return f"{name} ({', '.join(units) if units else 'no bf16 units'})"


def matmul_peak(dtype: str = "float32", device: str = "cpu", n: int = 0, repeats: int = 10) -> float:
    """This machine's matrix-product peak for ``dtype`` (FLOP/s): the fastest of ``repeats`` n x n x n
    products after warm-up. n: 2048 on CPU; 8192 on a GPU, where a 2048 product is too short to
    reach the chip's peak (launch overhead)."""
    import torch

    n = n or (2048 if device == "cpu" else 8192)
    a = torch.randn(n, n, device=device).to(getattr(torch, dtype))
    b = torch.randn(n, n, device=device).to(getattr(torch, dtype))

    def sync():
        if device != "cpu":
            torch.cuda.synchronize()

    for _ in range(3):
        a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


ENCODERS = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet", "deberta-v2", "camembert")


def model_flops(model_path: str, lengths, backward: bool = False) -> float:
    """What a transformer's forward over sequences of these real-token lengths costs in FLOPs (2 per
    multiply-add): every linear layer of every layer on every real token, and attention's two n x n
    products; x3 with the backward (the usual model-FLOPs count). Padding, embeddings and the small
    heads are not counted: it is what the model needs, not what an implementation spends, so the
    same work counts the same for every library, and an implementation that skips rows (the packed
    reranker's last layer) is credited with the FLOPs it did not need to run."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_path)
    c = getattr(c, "text_config", None) or c
    d, layers, ff = c.hidden_size, c.num_hidden_layers, c.intermediate_size
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or d // heads
    if c.model_type in ENCODERS:  # q, k, v, o: d x d each; feed-forward d x ff and back
        per_token = 4 * d * d + 2 * d * ff
    else:  # decoders (Llama, Qwen2, Gemma, ...): grouped k/v heads, gated feed-forward (3 matrices)
        kv = getattr(c, "num_key_value_heads", None) or heads
        per_token = 2 * d * heads * head_dim + 2 * d * kv * head_dim + 3 * d * ff
    forward = sum(layers * (2 * n * per_token + 4 * n * n * heads * head_dim) for n in lengths)
    return forward * (3 if backward else 1)


def token_lengths(model_path: str, texts, max_length: int) -> list:
    """Each text's token count (special tokens included, cut at max_length); a text may be a
    (query, document) pair."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    pairs = [t for t in texts if not isinstance(t, str)]
    if pairs:
        enc = tok([p[0] for p in pairs], [p[1] for p in pairs], truncation="longest_first", max_length=max_length)
    else:
        enc = tok(list(texts), truncation=True, max_length=max_length)
    return [len(ids) for ids in enc["input_ids"]]


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's (with its bf16 units) and the threads used."""
    if device != "cpu":
        import torch

        return torch.cuda.get_device_name(0)
    return f"{bench_env()['OMP_NUM_THREADS']} CPU threads, {cpu_name()}"


def peak_fraction(flops: float, seconds: float, peak: float) -> str:
    """'123.4 GFLOP/s, 61.7% of peak'."""
    return f"{flops / seconds / 1e9:.1f} | {100 * flops / seconds / peak:.1f}%"


def print_table(results: dict, contenders, caption: str, unit: str, args, flops: float = 0.0,
                peak: float = 0.0) -> dict:
    """The speed table: seconds, items/s, peak memory, achieved GFLOP/s and its share of the measured
    matmul peak (when ``flops`` and ``peak`` are given) and the largest difference from ours per
    library, then ours against the fastest other library. Returns the table's numbers (and writes
    them to ``args.json`` when given)."""
    import numpy as np

    ours = results["rag-retrieval"]
    n = len(ours["result"])
    gpu = args.device != "cpu"
    mem = "peak GPU MB" if gpu else "peak RSS MB"
    print(f"\n{caption}, fp32, {device_name(args.device)}, fastest of {args.repeats} passes x {args.rounds} "
          f"alternating rounds\n")
    if peak:
        print(f"Measured fp32 matmul peak: {peak / 1e9:.0f} GFLOP/s; model FLOPs of the work: {flops / 1e9:.0f} GFLOP\n")
    extra = " GFLOP/s | % of fp32 peak |" if peak else ""
    print(f"| library | seconds | {unit}/s | {mem} |{extra} max abs diff vs ours |")
    print("|---|---|---|---|" + ("---|---|" if peak else "") + "---|")
    rows = {}
    for which in contenders:
        r = results[which]
        diff = float(np.max(np.abs(np.array(r["result"]) - np.array(ours["result"]))))
        memory = r.get("peak_gpu_mb") if gpu else r["peak_rss_mb"]
        cells = f" {peak_fraction(flops, r['seconds'], peak)} |" if peak else ""
        print(f"| {which} | {r['seconds']:.2f} | {n / r['seconds']:.1f} | {memory or 0:.0f} |{cells} {diff:.1e} |")
        rows[which] = {"seconds": r["seconds"], f"{unit}_per_s": n / r["seconds"], "peak_memory_mb": memory,
                       "max_abs_diff": diff, **({"gflops": flops / r["seconds"] / 1e9,
                                                  "peak_fraction": flops / r["seconds"] / peak} if peak else {})}
    fastest = min((w for w in contenders if w != "rag-retrieval"), key=lambda w: results[w]["seconds"])
    ratio = results[fastest]["seconds"] / ours["seconds"]
    mem_ratio = (rows["rag-retrieval"]["peak_memory_mb"] or 0) / (rows[fastest]["peak_memory_mb"] or 1)
    print(f"| ours vs the fastest other ({fastest}) | | {ratio:.2f}x | {mem_ratio:.2f}x |" + (" | |" if peak else "")
          + " |")
    table = {"caption": caption, "device": device_name(args.device), "items": n, "unit": unit,
             "matmul_peak_gflops": peak / 1e9, "model_gflop": flops / 1e9, "libraries": rows,
             "speedup_vs_fastest_other": ratio, "fastest_other": fastest}
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    return table
