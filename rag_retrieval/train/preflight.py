"""Everything that must fail before a model loads: output folder, launcher, lengths, resume, data.

A mistake here costs a second, not a model download; nothing is written to ``output_dir`` until
:func:`preflight` has passed (the run creates it, in ``rag_retrieval.train.run.init_run``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Optional

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import sort_checkpoints

from .. import kinds
from ..data import load_examples
from ..data.labels import check_labels
from ..errors import ConfigError
from ..eval.evaluators import build_evaluator
from ..kinds import SETTINGS_FILE
from ..models.hub import check_model, resolve_model_path
from ..models.weights import adapter_base, model_source
from ..utils.quiet import quiet_deepspeed, quiet_libraries
from .hub import check_push

logger = logging.getLogger(__name__)
# encoders whose position table has two extra slots for the padding offset
GRAD_CACHE_KINDS = ("embedding", "colbert")  # models whose loss reads vectors encoded apart (DualEncoder)
LENGTH_BUCKET_KINDS = ("embedding", "reranker", "llm_reranker")  # collators that split a batch by length
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2, "bart": 2, "mbart": 2}


@dataclass
class Ready:
    """What preflight found: the checkpoint to resume from, the training examples, the evaluator."""

    resume: Optional[str]
    examples: list
    evaluator: Any


def preflight(cfg) -> Ready:
    """Run every check that needs no model weights, then read the data (file:line errors)."""
    quiet_libraries(logging.INFO if cfg.train.process_index == 0 else logging.WARNING)
    quiet_deepspeed()
    check_output_dir(cfg.train)
    check_push(cfg.train)
    if cfg.train.grad_cache_chunk and cfg.kind not in GRAD_CACHE_KINDS:
        raise ConfigError(f"train.grad_cache_chunk applies to the {' and '.join(GRAD_CACHE_KINDS)} kinds (texts encoded "
                          f"apart), not to {cfg.kind}: remove it")
    if cfg.data.length_buckets > 1 and cfg.kind not in LENGTH_BUCKET_KINDS:
        raise ConfigError(f"data.length_buckets applies to the {', '.join(LENGTH_BUCKET_KINDS)} kinds, not to {cfg.kind}: "
                          f"remove it")
    check_launcher(cfg)
    resume = resolve_resume(cfg.train)
    check_models(cfg)
    check_lengths(cfg)
    examples = load_examples(cfg.data.train_files, cfg.data.format, cfg.data.skip_bad_lines, cfg.data.max_examples,
                             columns=cfg.data.columns, label_range=cfg.data.label_range)
    if cfg.data.negatives != "file":
        examples = _remine(examples, cfg.data)
    if cfg.loss.needs_teacher_scores and examples[0]["scores"] is None:
        raise ConfigError(f"loss.name={cfg.loss.name} needs teacher scores (pos_scores/neg_scores) in data.train_path")
    labels = (g for batch in examples.select_columns(["labels"]).iter(batch_size=10_000) for g in batch["labels"])
    where = _Where(examples)
    for warning in check_labels(labels, where, cfg.loss.name, kinds.get(cfg.kind).losses, cfg.data.group_size,
                                scaled=cfg.data.label_range is not None, has_scores=examples[0]["scores"] is not None):
        logger.warning(warning)
    return Ready(resume, examples, build_evaluator(cfg.eval))


def _remine(examples, data):
    """``data.negatives: bm25``: each query's negatives mined again (rag_retrieval.data.negatives)."""
    from ..data.negatives import remine_negatives

    if examples[0]["scores"] is not None:
        raise ConfigError(f"data.negatives={data.negatives} replaces the negatives that the teacher scores of "
                          f"data.train_path belong to: set data.negatives=file to train on them")
    examples, stats = remine_negatives(examples, data.group_size, data.false_negative_margin)
    logger.info("data.negatives=%s: %d queries' negatives mined again from their documents in %.1fs: %d -> %d "
                "negatives, %d dropped as likely false negatives (data.false_negative_margin=%s), %d queries left with "
                "none (they train on other queries' documents)", data.negatives, stats.queries, stats.seconds,
                stats.negatives_before, stats.negatives_after, stats.dropped_as_false_negative,
                data.false_negative_margin, stats.queries_without_negatives)
    return examples


class _Where:
    """``file:line`` of a record by index, read only for the few records a message names."""

    def __init__(self, examples):
        self.examples = examples

    def __getitem__(self, i: int) -> str:
        return self.examples[int(i)]["where"]


def check_output_dir(args) -> None:
    """Refuse to train over a finished model unless asked (resuming is fine).

    Raises:
        FileExistsError: output_dir holds a finished model and neither
            ``train.overwrite_output_dir`` nor ``train.resume_from_checkpoint`` is set.
    """
    if holds_finished_model(args.output_dir) and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        raise FileExistsError(
            f"{args.output_dir} already holds a trained model; set train.overwrite_output_dir=true to replace it, "
            "train.resume_from_checkpoint=last to continue, or choose another train.output_dir")


def holds_finished_model(output_dir: str) -> bool:
    """Whether a run saved its final model in ``output_dir`` (PE-Rank keeps its weights in sub-folders,
    beside our settings file)."""
    return any(os.path.isfile(os.path.join(output_dir, name))
               for name in ("model.safetensors", "adapter_model.safetensors", SETTINGS_FILE))


def check_launcher(cfg) -> None:
    """An accelerate launch that already chose FSDP or a DeepSpeed config must not meet
    ``train.deepspeed`` too (the Trainer would silently prefer the latter, or fail late)."""
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    launched = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if cfg.model.use_lora and cfg.model.merge_lora and (
            fsdp or _zero_stage(cfg.train.deepspeed or launched) == 3):
        raise ConfigError(f"{cfg.source}: model.merge_lora=true with {'FSDP' if fsdp else 'DeepSpeed ZeRO-3'}: the "
                          "weights are sharded when the run saves; set model.merge_lora=false (the adapter is saved "
                          "whole) and merge it after with scripts/merge_lora.py")
    if not cfg.train.deepspeed:
        return
    if fsdp:
        raise ConfigError(f"{cfg.source}: train.deepspeed={cfg.train.deepspeed} under an accelerate FSDP launch: "
                          "choose one (train.deepspeed=null for FSDP)")
    if launched and os.path.abspath(launched) != os.path.abspath(cfg.train.deepspeed):
        raise ConfigError(f"{cfg.source}: train.deepspeed={cfg.train.deepspeed} but the accelerate config launched "
                          f"DeepSpeed with {launched}: choose one (train.deepspeed=null to use the accelerate one)")


def _zero_stage(deepspeed) -> int:
    """The ZeRO stage of a DeepSpeed config (a JSON path or a dict); 0 when there is none."""
    if not deepspeed:
        return 0
    if isinstance(deepspeed, str):
        with open(deepspeed) as f:
            deepspeed = json.load(f)
    return int((deepspeed.get("zero_optimization") or {}).get("stage", 0))


def check_models(cfg) -> None:
    """Every model the run names can load (a folder, an alias, the offline cache) before any weight
    does: one line naming the key otherwise."""
    try:
        path = check_model(cfg.model.model_name_or_path, "model.model_name_or_path")
        base = adapter_base(path) if os.path.isdir(path) else None
        if base:
            check_model(base, f"the base model of the LoRA adapter {path}")
        embedder = getattr(cfg.model, "embedder", None)
        if embedder and not cfg.model.continues:
            check_model(embedder, "model.embedder")
    except FileNotFoundError as err:
        raise ConfigError(f"{cfg.source}: {err}") from None


def check_lengths(cfg) -> None:
    """``data.query_max_len`` / ``passage_max_len`` / ``eval.max_length`` must fit the model's
    position table (read from its config file, before any weight loads). A hub id that cannot be
    reached is left to ``from_pretrained`` to report."""
    from transformers import AutoConfig

    name = cfg.model.model_name_or_path
    try:
        config = AutoConfig.from_pretrained(model_source(resolve_model_path(name)),
                                            trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError):
        return
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return
    limit -= POSITION_OFFSET.get(config.model_type, 0)
    for key, value in (("data.query_max_len", cfg.data.query_max_len), ("data.passage_max_len", cfg.data.passage_max_len),
                       ("eval.max_length", cfg.eval.max_length)):
        if value is not None and value > limit:
            raise ConfigError(f"{cfg.source}: {key}={value} is beyond the {limit} positions of {name} "
                              f"({type(config).__name__}.max_position_embeddings); set {key} <= {limit}")


def last_complete_checkpoint(output_dir: str) -> Optional[str]:
    """The newest ``checkpoint-N`` of ``output_dir`` that was written to the end: the Trainer writes
    ``trainer_state.json`` last, so a run killed while saving leaves a folder without it (or with a
    truncated one), which is skipped with a warning. None when there is none."""
    for folder in reversed(sort_checkpoints(output_dir) if os.path.isdir(output_dir) else []):  # newest first
        if checkpoint_is_complete(folder):
            return folder
        logger.warning("skipping %s: incomplete (the run stopped while writing it)", folder)
    return None


def checkpoint_is_complete(folder: str) -> bool:
    """Whether the Trainer finished writing ``folder`` (its last file, trainer_state.json, parses)."""
    try:
        with open(os.path.join(folder, TRAINER_STATE_NAME)) as f:
            json.load(f)
        return True
    except (OSError, ValueError):
        return False


def resolve_resume(args) -> Optional[str]:
    """The checkpoint to resume from (``last`` -> the newest complete one in output_dir), or None.

    Raises:
        FileNotFoundError: no such folder, no complete checkpoint for ``last``, or a named
            checkpoint that was never finished (it would resume from half-written weights).
    """
    ckpt = args.resume_from_checkpoint
    if ckpt in (None, "", False):
        return None
    if str(ckpt).lower() in ("last", "latest", "true"):
        last = last_complete_checkpoint(args.output_dir)
        if last is None:
            raise FileNotFoundError(f"train.resume_from_checkpoint={ckpt}: no complete checkpoint-* folder in "
                                    f"{args.output_dir}")
        return last
    if not os.path.isdir(ckpt):
        raise FileNotFoundError(f"train.resume_from_checkpoint: no such folder: {ckpt}")
    if not checkpoint_is_complete(ckpt):
        raise FileNotFoundError(f"train.resume_from_checkpoint: {ckpt} is incomplete (no readable "
                                f"{TRAINER_STATE_NAME}: the run stopped while writing it); resume from an earlier "
                                f"checkpoint or 'last'")
    return ckpt
