#!/usr/bin/env python
"""The GPU check: every kind and the speed benchmarks on CUDA, one JSON. Run it through
``bash benchmarks/gpu_check.sh`` (which picks the interpreter); the steps, each in its own process with a
time limit, a failed step recorded (with the end of its output) and the next one run:

1. machine: GPU, driver, torch / transformers versions, the measured matmul peak (fp32, TF32 off, and
   bf16; 8192^3 products, the fastest of 10);
2. kinds: each kind's CPU config (embedding, reranker, ColBERT, LLM reranker, PE-Rank alignment then
   ranking) for ``--steps`` steps on the GPU in bf16 (SDPA attention), evaluated on ``--eval-queries``
   test queries after training: seconds per step, samples/s, peak GPU memory, the metrics;
3. serving: benchmarks/bench_embed.py and bench_rerank.py with ``--device cuda`` (fp32, every library);
4. training against sentence-transformers: benchmarks/bench_train.py --kind embedding --device cuda --bf16;
5. scaling: benchmarks/bench_scaling.py --gpu (the GPU configs, their models replaced by ``--encoder``).

The JSON (``--out``) is rewritten after every step, so a run cut short keeps what it measured.

Models: ``--encoder`` (default all-MiniLM-L6-v2, the ``minilm`` alias) for the BERT kinds and as the
PE-Rank embedder, ``--llm`` (default SmolLM2-135M-Instruct, ``smollm2``) for the LLM kinds. A GPU box
without those packages or without a network takes a bundle made where they are installed:
``python benchmarks/gpu_check.py --make-bundle DIR`` writes DIR/minilm (the weights in fp16: half the
size; the check converts them back to fp32, the same values to fp16 rounding), DIR/llm (SmolLM2's config
and tokenizer only: the check builds it with seeded random weights there, so its speed is real and its
quality is not) and DIR/wheels (this project's Python dependencies that a plain CUDA PyTorch image lacks);
``BUNDLE=DIR bash benchmarks/gpu_check.sh`` installs the wheels and uses those models.
"""
from __future__ import annotations

import argparse
import json
import lzma
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# PE-Rank's evaluation decodes window after window, one small forward per token: 100 queries took over
# 100 s on an H200, so it scores at most this many
PE_RANK_EVAL_QUERIES = 20
KINDS = [  # name, kind, CPU config, which model (encoder / llm / the alignment output)
    ("embedding", "embedding", "configs/embedding/minilm_pkgdesc_cpu.yaml", "encoder"),
    ("reranker", "reranker", "configs/reranker/minilm_pkgdesc_cpu.yaml", "encoder"),
    ("colbert", "colbert", "configs/colbert/minilm_pkgdesc_cpu.yaml", "encoder"),
    ("llm_reranker", "llm_reranker", "configs/llm_reranker/smollm2_pkgdesc_cpu.yaml", "llm"),
    ("pe_rank_align", "pe_rank", "configs/pe_rank/smollm2_minilm_cpu_align.yaml", "llm"),
    ("pe_rank_rank", "pe_rank", "configs/pe_rank/smollm2_minilm_cpu_rank.yaml", "align"),
]
# the packages of requirements.txt that a CUDA PyTorch image with transformers, sentence-transformers,
# peft, accelerate, pandas, pyarrow, tensorboard and xxhash installed still lacks
BUNDLE_PACKAGES = ("omegaconf", "datasets", "dill", "multiprocess", "bm25s", "PyStemmer", "FlagEmbedding")


def make_bundle(out: str, python_version: str) -> None:
    """Models and wheels for a GPU machine without a network (see the module's docstring)."""
    import shutil
    from importlib.metadata import version

    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from rag_retrieval.models.hub import resolve_model_path

    os.makedirs(out, exist_ok=True)
    encoder = resolve_model_path("minilm")
    dest = os.path.join(out, "minilm")
    shutil.copytree(encoder, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
        "*.safetensors", "*.bin", "*.onnx", "*.h5", "*.msgpack", "*.ot", "onnx", "openvino", "*.tflite", "README.md",
        "data_config.json", ".gitattributes"))
    AutoModel.from_pretrained(encoder, dtype=torch.float32).to(torch.float16).save_pretrained(dest)
    llm = resolve_model_path("smollm2")
    AutoConfig.from_pretrained(llm).save_pretrained(os.path.join(out, "llm"))
    AutoTokenizer.from_pretrained(llm).save_pretrained(os.path.join(out, "llm"))
    for big in ("tokenizer.json",):  # 3.5 MB of text: xz makes it a fifth
        path = os.path.join(out, "llm", big)
        with open(path, "rb") as f, lzma.open(path + ".xz", "wb") as g:
            g.write(f.read())
        os.remove(path)
    wheels = os.path.join(out, "wheels")
    platforms = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                                             "manylinux1_x86_64")]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    f"--python-version={python_version}", "--implementation=cp", *platforms, "-d", wheels,
                    *[f"{p}=={version(p)}" for p in BUNDLE_PACKAGES]], check=True)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"bundle {out}: {size / 2**20:.1f} MiB (minilm fp16, llm config + tokenizer, {len(os.listdir(wheels))} wheels)")


def unpack_bundle(bundle: str, work: str) -> tuple:
    """The bundle's models as loadable fp32 folders under ``work``: (encoder, llm)."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    encoder, llm = os.path.join(work, "minilm"), os.path.join(work, "llm")
    if not os.path.isfile(os.path.join(encoder, "model.safetensors")):
        shutil.copytree(os.path.join(bundle, "minilm"), encoder, dirs_exist_ok=True)
        AutoModel.from_pretrained(encoder, dtype=torch.float32).save_pretrained(encoder)
    if not os.path.isfile(os.path.join(llm, "model.safetensors")):
        shutil.copytree(os.path.join(bundle, "llm"), llm, dirs_exist_ok=True)
        for packed in [f for f in os.listdir(llm) if f.endswith(".xz")]:
            with lzma.open(os.path.join(llm, packed)) as f, open(os.path.join(llm, packed[:-3]), "wb") as g:
                g.write(f.read())
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(llm), dtype=torch.float32).save_pretrained(llm)
    return encoder, llm


def machine(device: str) -> dict:
    """What the check ran on, and the matmul peaks the fractions below are shares of."""
    import torch
    import transformers

    from benchmarks.harness import cpu_name, matmul_peak

    info = {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0],
            "cpu": cpu_name(), "cpu_count": os.cpu_count(), "device": device}
    if device != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = False
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, multiprocessors=props.multi_processor_count,
                    cuda=torch.version.cuda)
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    info["matmul_peak_gflops"] = {dt: matmul_peak(dt, device) / 1e9 for dt in ("float32", "bfloat16")}
    return info


def run_step(cmd: list, timeout: float, env: dict, log: str) -> tuple:
    """Run ``cmd`` (output to ``log``); (return code or 'timeout', seconds, the output's last 3,000 characters)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    with open(log) as f:
        text = f.read()
    return rc, time.perf_counter() - t0, text[-3000:]


def train_kind(name, kind, config, model, args, env, work) -> dict:
    """One kind's CPU config on the device in bf16 for args.steps steps; its speed, memory and metrics."""
    from benchmarks.bench_scaling import train_metrics

    out = os.path.join(work, name)
    overrides = [f"train.output_dir={out}", f"train.max_steps={args.steps}", "train.save_strategy=no",
                 "train.overwrite_output_dir=true", "train.report_to=none", "train.skip_memory_metrics=false",
                 f"train.logging_steps={args.steps}", "train.warmup_steps=0",
                 f"eval.max_queries={min(args.eval_queries, PE_RANK_EVAL_QUERIES) if kind == 'pe_rank' else args.eval_queries}",
                 "eval.before_training=false", f"model.model_name_or_path={model}"]
    if args.device == "cpu":
        overrides += ["train.use_cpu=true", "data.max_examples=64"]
    else:
        overrides += ["train.use_cpu=false", "train.bf16=true", "model.attn_implementation=sdpa"]
    if kind == "pe_rank" and name.endswith("align"):
        overrides.append(f"model.embedder={args.encoder}")
    cmd = [sys.executable, "-m", "rag_retrieval.cli", "train", kind, "--config", config, *overrides]
    rc, seconds, tail = run_step(cmd, args.step_timeout, env, os.path.join(work, f"{name}.log"))
    result = {"config": config, "model": model, "rc": rc, "wall_s": seconds}
    if rc != 0:
        return dict(result, error=tail)
    try:
        m = train_metrics(open(os.path.join(work, f"{name}.log")).read())
    except RuntimeError:
        m = {}
    device = "cpu" if args.device == "cpu" else "gpu"
    peak = sum(m.get(f"{stage}_mem_{device}_{what}_delta", 0.0)
               for stage, what in (("init", "alloc"), ("train", "alloc"), ("train", "peaked"))) / 2**20
    metrics_file = os.path.join(out, "metrics.json")
    metrics = json.load(open(metrics_file)) if os.path.isfile(metrics_file) else {}
    return dict(result, train_s=m.get("train_runtime"), step_s=(m.get("train_runtime") or 0) / args.steps,
                samples_per_s=m.get("train_samples_per_second"), peak_memory_mb=peak, metrics=metrics)


def bench(script: str, extra: list, args, env, work, name: str) -> dict:
    """A benchmark script with --json: its JSON, or the failure."""
    out = os.path.join(work, f"{name}.json")
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", script), *extra, "--json", out]
    rc, seconds, tail = run_step(cmd, args.step_timeout, env, os.path.join(work, f"{name}.log"))
    if rc != 0 or not os.path.isfile(out):
        return {"rc": rc, "wall_s": seconds, "error": tail}
    return dict(json.load(open(out)), rc=rc, wall_s=seconds, table=tail[tail.find("|"):] if "|" in tail else "")


def scaling(kind: str, args, env, work) -> dict:
    """bench_scaling.py --gpu for one kind (its GPU config, bf16), the model replaced by --encoder and what
    needs a package or a hub model turned off (DeepSpeed, best-model selection, Matryoshka dims of 768)."""
    sets = [f"model.model_name_or_path={args.encoder}", "train.deepspeed=null", "train.eval_strategy=no",
            "train.load_best_model_at_end=false"]
    if kind == "embedding":
        sets.append("loss.matryoshka_dims=null")
    if args.device == "cpu":  # the plumbing only
        sets.append("train.use_cpu=true")
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "bench_scaling.py"), "--procs", "1", "--steps",
           str(args.steps), "--kinds", kind, "--gpu", "--set", *sets]
    rc, seconds, tail = run_step(cmd, args.step_timeout, env, os.path.join(work, f"scaling_{kind}.log"))
    return {"rc": rc, "wall_s": seconds, ("table" if rc == 0 else "error"): tail[tail.find("|"):] if rc == 0 else tail}


def cross_encoder(encoder: str, work: str) -> str:
    """``encoder`` with a seeded new one-logit head, saved once: bench_rerank's checkpoint."""
    import torch

    from rag_retrieval.models import CrossEncoder

    path = os.path.join(work, "cross_encoder")
    if not os.path.isfile(os.path.join(path, "config.json")):
        torch.manual_seed(0)
        CrossEncoder.from_pretrained(encoder).save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "outputs", "gpu_check", "gpu_check.json"))
    parser.add_argument("--work", help="logs and trained models (default: work/ beside --out)")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu tries the check's plumbing in minutes")
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--bundle", help="a folder made by --make-bundle: its models replace --encoder / --llm")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eval-queries", type=int, default=100)
    parser.add_argument("--passages", type=int, default=2000, help="bench_embed passages / bench_rerank pairs")
    parser.add_argument("--step-timeout", type=float, default=240, help="seconds each step may take")
    parser.add_argument("--only", nargs="+", choices=["kinds", "serving", "train", "scaling"],
                        help="these parts only (default: all)")
    parser.add_argument("--kinds", nargs="+", choices=[k[0] for k in KINDS], help="kinds part: these only")
    parser.add_argument("--make-bundle", metavar="DIR", help="write the offline bundle to DIR and exit")
    parser.add_argument("--python-version", default="3.12", help="--make-bundle: the GPU machine's Python")
    args = parser.parse_args()
    if args.make_bundle:
        return make_bundle(args.make_bundle, args.python_version)

    import torch

    if args.device != "cpu" and not torch.cuda.is_available():
        sys.exit(f"error: no CUDA device visible to torch {torch.__version__} (run with --device cpu to try the "
                 "plumbing on a CPU)")
    work = args.work or os.path.join(os.path.dirname(os.path.abspath(args.out)), "work")
    os.makedirs(work, exist_ok=True)
    if args.bundle:
        args.encoder, args.llm = unpack_bundle(args.bundle, os.path.join(work, "models"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": args.steps, "encoder": args.encoder,
              "llm": args.llm, "llm_weights": "seeded random (bundle)" if args.bundle else "pretrained",
              "machine": machine(args.device)}

    def save():
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)

    save()
    parts = args.only or ["kinds", "serving", "train", "scaling"]
    n = str(args.passages)
    if "kinds" in parts:
        report["kinds"] = {}
        models = {"encoder": args.encoder, "llm": args.llm, "align": os.path.join(work, "pe_rank_align")}
        for name, kind, config, which in KINDS:
            if args.kinds and name not in args.kinds:
                continue
            report["kinds"][name] = train_kind(name, kind, config, models[which], args, env, work)
            print(f"[gpu_check] {name}: rc {report['kinds'][name]['rc']}, {report['kinds'][name]['wall_s']:.0f} s",
                  flush=True)
            save()
    if "serving" in parts:
        common = ["--device", args.device, "--rounds", "1"]
        report["embed"] = bench("bench_embed.py", ["--passages", n, "--model", args.encoder, *common], args, env,
                                work, "embed")
        save()
        print(f"[gpu_check] embed: rc {report['embed']['rc']}", flush=True)
        report["rerank"] = bench("bench_rerank.py", ["--pairs", n, "--model", cross_encoder(args.encoder, work),
                                                     *common], args, env, work, "rerank")
        save()
        print(f"[gpu_check] rerank: rc {report['rerank']['rc']}", flush=True)
    if "train" in parts:
        extra = ["--kind", "embedding", "--model", args.encoder, "--device", args.device, "--steps", str(args.steps), "--batch-queries", "32",
                 "--max-length", "128", "--lr", "3e-5", "--eval-queries", str(args.eval_queries)]
        report["train_embedding"] = bench("bench_train.py", extra + (["--bf16"] if args.device != "cpu" else []),
                                          args, env, work, "train_embedding")
        save()
        print(f"[gpu_check] train_embedding: rc {report['train_embedding']['rc']}", flush=True)
    if "scaling" in parts:
        for kind in ("embedding", "reranker"):
            report[f"scaling_{kind}"] = scaling(kind, args, env, work)
            save()
            print(f"[gpu_check] scaling_{kind}: rc {report[f'scaling_{kind}']['rc']}", flush=True)
    steps = ("embed", "rerank", "train_embedding", "scaling_embedding", "scaling_reranker")
    failed = [k for k, v in {**report.get("kinds", {}), **{p: report.get(p) for p in steps}}.items()
              if v and v.get("rc") != 0]
    report["failed"] = failed
    save()
    print(f"[gpu_check] wrote {args.out}; failed: {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    main()
