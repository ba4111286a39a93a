"""Train a PE-Rank listwise reranker (passage embeddings as LLM tokens), one stage per run.

    Stage 1, alignment (loss.name=align): only the projector learns, so the LLM can read a passage
    back from its one embedding token.
    Stage 2, learning to rank (loss.name=listmle+contextual_listmle+kl): ListMLE over the decoding
    steps of the target permutation, the same with the passages' text in the prompt, and a KL term
    between the two; the LLM (full or LoRA) and the projector learn.

    torchrun --nproc_per_node N -m rag_retrieval.train.pe_rank --config configs/pe_rank/x.yaml key=value ...
"""

from __future__ import annotations

import os
from typing import Optional

from ..config import PE_RANK_LOSSES, ConfigError, load_config
from ..data import PERankCollator, build_grouped_dataset
from ..losses import PERankLoss
from ..models import PERank
from ..models.hub import resolve_model_path
from ..models.weights import read_settings
from .args import resolve_resume
from .common import init_run, load_data, run_main, train_and_report
from .trainer import RetrievalTrainer


def continued_model(cfg) -> Optional[str]:
    """The PE-Rank folder ``model.model_name_or_path`` names (stage 2 continues stage 1), else None."""
    path = resolve_model_path(cfg.model.model_name_or_path)
    return path if os.path.isdir(path) and read_settings(path).get("kind") == "pe-rank" else None


def build_model(cfg) -> PERank:
    """Continue from a PE-Rank folder (stage 2 after stage 1), or join an LLM and an embedder."""
    m = cfg.model
    # None keeps a continued model's saved setting (or the class default for a new one)
    settings = {"window_size": m.window_size, "window_step": m.window_step, "context_max_len": m.context_max_len,
                "query_max_len": cfg.data.query_max_len, "prompt": m.prompt}
    path = continued_model(cfg)
    if path is not None:
        return PERank.from_pretrained(path, lora=m.lora, dtype=m.dtype, trainable=True, **settings)
    return PERank.from_parts(m.model_name_or_path, m.embedder, dtype=m.dtype, attn_implementation=m.attn_implementation,
                             trust_remote_code=m.trust_remote_code, lora=m.lora, projector_hidden=m.projector_hidden,
                             **settings)


def check_pe_rank_setup(cfg, parts: list) -> None:
    if continued_model(cfg) is None and not cfg.model.embedder:
        raise ConfigError(f"{cfg.source}: model.embedder is not set: PE-Rank needs the frozen embedder whose passage "
                          f"vectors become the LLM's passage tokens (e.g. minilm, BAAI/bge-base-en-v1.5)")
    if "align" in parts and len(parts) > 1:
        raise ConfigError(f"{cfg.source}: loss.name={cfg.loss.name}: 'align' is stage 1 on its own; stage 2 joins "
                          f"listmle, contextual_listmle and kl with '+'")
    if "align" not in parts and cfg.data.group_size < 2:
        raise ConfigError(f"{cfg.source}: loss.name={cfg.loss.name} ranks several passages per query: set "
                          f"data.group_size > 1 (got {cfg.data.group_size})")
    if cfg.model.prompt is not None and "{passages}" not in cfg.model.prompt:
        raise ConfigError(f"{cfg.source}: model.prompt needs a {{passages}} placeholder for the passage tokens")
    size, step = cfg.model.window_size, cfg.model.window_step
    if size is not None and step is not None and not 0 < step <= size:
        raise ConfigError(f"{cfg.source}: model.window_step must be in [1, model.window_size]")


def main(argv=None) -> dict:
    cfg = load_config(argv, loss_choices=PE_RANK_LOSSES)
    parts = cfg.loss.name.split("+")
    check_pe_rank_setup(cfg, parts)
    init_run(cfg)
    resume = resolve_resume(cfg.train)
    examples, evaluator = load_data(cfg)  # checked before any model loads

    model = build_model(cfg)
    model.objectives = tuple(parts)
    if cfg.model.freeze_llm if cfg.model.freeze_llm is not None else "align" in parts:
        model.llm.requires_grad_(False)  # stage 1: only the projector learns
    dataset = build_grouped_dataset(examples, cfg.data, cfg.train)
    loss = PERankLoss(parts, {"kl": cfg.loss.kl_weight, **(cfg.loss.weights or {})})
    trainer = RetrievalTrainer(model=model, args=cfg.train, train_dataset=dataset,
                               data_collator=PERankCollator(seed=cfg.train.seed), loss_fn=loss, evaluator=evaluator)
    return train_and_report(cfg, trainer, model, evaluator, resume)


if __name__ == "__main__":
    run_main(main)
