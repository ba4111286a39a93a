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
    """--batch-size, --repeats, --rounds and the worker's --worker / --out."""
    parser.add_argument("--batch-size", type=int, default=32)
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
        result = fn()
        times.append(time.perf_counter() - t0)
    with open(out_path, "w") as f:
        json.dump({"seconds": min(times), "result": result,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}, f)


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


def print_table(results: dict, contenders, caption: str, unit: str, args) -> None:
    """The speed table: seconds, items/s, peak RSS and the largest difference from ours per library,
    then ours against the fastest other library."""
    import numpy as np

    ours = results["rag-retrieval"]
    n = len(ours["result"])
    print(f"\n{caption}, fp32, {bench_env()['OMP_NUM_THREADS']} CPU threads, {cpu_name()}, fastest of "
          f"{args.repeats} passes x {args.rounds} alternating rounds\n")
    print(f"| library | seconds | {unit}/s | peak RSS MB | max abs diff vs ours |")
    print("|---|---|---|---|---|")
    for which in contenders:
        r = results[which]
        diff = float(np.max(np.abs(np.array(r["result"]) - np.array(ours["result"]))))
        print(f"| {which} | {r['seconds']:.1f} | {n / r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {diff:.1e} |")
    fastest = min((w for w in contenders if w != "rag-retrieval"), key=lambda w: results[w]["seconds"])
    print(f"| ours vs the fastest other ({fastest}) | | {results[fastest]['seconds'] / ours['seconds']:.2f}x | "
          f"{ours['peak_rss_mb'] / results[fastest]['peak_rss_mb']:.2f}x | |")
