"""The model card: README.md written into the output folder by every finished training run.

YAML metadata the Hugging Face Hub reads (base_model, library_name, pipeline_tag, tags, datasets
when they are hub ids, a model-index with the run's evaluation after training), then what the
model is, how it was trained (data, loss, hyperparameters, steps, hardware, time), the evaluation
before and after (with the paired comparison when both ran) and how to load it. A README.md that
this project did not write (a user's own, in a folder trained again) is kept unless
``train.model_card: overwrite``; ``off`` writes none.
"""

from __future__ import annotations

import logging
import os
import platform
from typing import Optional

logger = logging.getLogger(__name__)

MARKER = "<!-- model card written by rag-retrieval -->"
PIPELINE_TAGS = {"embedding": "sentence-similarity", "colbert": "sentence-similarity"}  # the others: text-ranking
HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
WHAT = {"embedding": "an embedding model (bi-encoder)", "reranker": "a cross-encoder reranker",
        "llm_reranker": "a decoder-only LLM reranker", "colbert": "a ColBERT late-interaction model",
        "pe_rank": "a PE-Rank listwise reranker (passage embeddings fed to an LLM)"}


def library_name(cfg) -> str:
    """What loads the saved folder besides this project: sentence-transformers for embedding models
    and classifier-head cross-encoders, transformers for LLM rerankers, this project for the rest."""
    if cfg.kind == "embedding" or (cfg.kind == "reranker" and not getattr(cfg.model, "separate_layers", None)):
        return "sentence-transformers"
    return "transformers" if cfg.kind == "llm_reranker" else "rag-retrieval"


def base_model(name: str) -> Optional[str]:
    """The hub id a run started from (an offline alias mapped back to its id; None for a local folder)."""
    if name in HUB_IDS:
        return HUB_IDS[name]
    return None if os.path.exists(name) or "/" not in name else name


def hardware(cfg) -> str:
    import torch

    if torch.cuda.is_available() and not getattr(cfg.train, "use_cpu", False):
        device = torch.cuda.get_device_name(0)
    else:
        device = _cpu_name() or platform.processor() or "CPU"
    processes = getattr(cfg.train, "world_size", 1)
    return f"{processes} x {device}" if processes > 1 else device


def _cpu_name() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{names[0]} ({len(names)} threads)" if names else None
    except OSError:
        return None


def card_text(cfg, results: dict, train_metrics: Optional[dict] = None, examples: Optional[int] = None,
              comparisons: Optional[list] = None) -> str:
    """The card's text (metadata + body) for a finished run."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from ..data.inputs import HF_PREFIX

    pipeline_tag = PIPELINE_TAGS.get(cfg.kind, "text-ranking")
    train_path = cfg.data.train_path
    paths = train_path if isinstance(train_path, list) else [train_path]
    datasets = [p[len(HF_PREFIX):] for p in paths if isinstance(p, str) and p.startswith(HF_PREFIX)] or None
    eval_name = cfg.eval.rerank_path or cfg.eval.beir_path or cfg.eval.corpus_path
    after = results.get("after") or {}
    evals = [EvalResult(task_type=pipeline_tag, dataset_type=str(eval_name), dataset_name=os.path.basename(str(eval_name)),
                        metric_type=k, metric_value=round(float(v), 4)) for k, v in after.items()] if eval_name else None
    base = base_model(cfg.model.model_name_or_path)
    data = ModelCardData(base_model=base, library_name=library_name(cfg), pipeline_tag=pipeline_tag,
                         tags=["rag-retrieval", cfg.kind, cfg.loss.name], datasets=datasets, eval_results=evals,
                         model_name=os.path.basename(os.path.normpath(cfg.train.output_dir)))
    t = cfg.train
    steps = (train_metrics or {}).get("global_step") or t.max_steps
    seconds = (train_metrics or {}).get("train_runtime")
    lines = [MARKER, f"# {data.model_name}", "",
             f"{WHAT.get(cfg.kind, cfg.kind).capitalize()} fine-tuned with rag-retrieval "
             f"from `{base or cfg.model.model_name_or_path}`.", "", "## Training", "",
             "| | |", "|---|---|",
             f"| data | {', '.join(f'`{p}`' for p in paths)} ({cfg.data.format}"
             + (f", {examples:,} training examples" if examples is not None else "") + ") |",
             f"| loss | `{cfg.loss.name}` |",
             f"| learning rate | {t.learning_rate:g} |",
             f"| batch | {t.per_device_train_batch_size} per process, {getattr(t, 'world_size', 1)} process(es), "
             f"{t.gradient_accumulation_steps} accumulation step(s) |",
             f"| steps | {steps} |",
             f"| precision | {'bf16' if t.bf16 else 'fp16' if t.fp16 else 'fp32'} |",
             f"| hardware | {hardware(cfg)} |"]
    if seconds is not None:
        lines.append(f"| training time | {seconds / 60:.1f} min |")
    lines.append(f"| config | `rag_retrieval_config.yaml` in this folder |")
    if results:
        metrics = list(next(iter(results.values())))
        lines += ["", "## Evaluation", "", f"On `{eval_name}`" + (f" (first {cfg.eval.max_queries} queries)"
                                                                 if cfg.eval.max_queries else "") + ":", "",
                  "| | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        lines += [f"| {label} | " + " | ".join(f"{row.get(m, float('nan')):.4f}" for m in metrics) + " |"
                  for label, row in results.items()]
        if comparisons:
            from ..eval.significance import format_comparisons

            lines += ["", "After against before, paired over the queries (bootstrap 95% interval, randomization "
                          "p-value):", "", format_comparisons(comparisons)]
    lines += ["", "## Use", "", "```python", *_usage(cfg), "```", ""]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n" + "\n".join(lines)))


def _usage(cfg) -> list:
    path = getattr(cfg.train, "hub_model_id", None) or cfg.train.output_dir
    if cfg.kind == "embedding":
        return ["from rag_retrieval import Embedder", f"emb = Embedder({path!r})",
                'emb.similarity(["a query"], ["a passage", "another passage"])', "",
                "# or sentence-transformers", "from sentence_transformers import SentenceTransformer",
                f"model = SentenceTransformer({path!r})"]
    lines = ["from rag_retrieval import Reranker", f"ranker = Reranker({path!r})",
             'ranker.rerank("a query", ["a passage", "another passage"])']
    if library_name(cfg) == "sentence-transformers":
        lines += ["", "# or sentence-transformers / FlagEmbedding", "from sentence_transformers import CrossEncoder",
                  f"CrossEncoder({path!r}).predict([('a query', 'a passage')])"]
    return lines


def write_card(cfg, results: dict, train_metrics: Optional[dict] = None, examples: Optional[int] = None,
               comparisons: Optional[list] = None) -> Optional[str]:
    """Write README.md into ``train.output_dir`` (main process); returns its path, or None when
    ``train.model_card`` is off or a README.md of the user's is kept."""
    mode = getattr(cfg.train, "model_card", "auto")
    if mode == "off":
        return None
    path = os.path.join(cfg.train.output_dir, "README.md")
    if mode == "auto" and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            if MARKER not in f.read():
                logger.info("%s is not a card of ours: kept (train.model_card=overwrite replaces it)", path)
                return None
    text = card_text(cfg, results, train_metrics, examples, comparisons)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
