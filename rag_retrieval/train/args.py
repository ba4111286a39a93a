"""TrainingArguments plus the few run-safety keys of rag-retrieval (the ``train:`` section)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from transformers import TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME as TRAINER_STATE
from transformers.trainer_utils import sort_checkpoints

NONFINITE_LOSS = ("stop", "skip")


@dataclass
class RetrievalTrainingArguments(TrainingArguments):
    """``transformers.TrainingArguments`` with:

    - ``overwrite_output_dir``: allow training into a folder that already holds a finished model.
    - ``resume_from_checkpoint``: a checkpoint folder, or ``last`` for the newest one in output_dir.
    - ``head_learning_rate``: learning rate of the weights the checkpoint did not have (a new score
      head on a plain encoder), same schedule; None = ``learning_rate``. A fresh head next to a
      pretrained body learns faster with a larger rate (e.g. 10x).
    - ``nonfinite_loss``: what a NaN or infinite loss does: ``stop`` raises an error naming the
      step and the loss parts; ``skip`` drops the batch (it contributes no gradient; counted and
      logged as ``skipped_batches``).
    """

    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace a finished model in output_dir"})
    head_learning_rate: Optional[float] = field(
        default=None, metadata={"help": "learning rate of newly initialised weights (a new head); None: learning_rate"})
    nonfinite_loss: str = field(
        default="stop", metadata={"help": "a NaN/inf loss: 'stop' the run with an error, or 'skip' the batch"})

    def __post_init__(self):
        if self.nonfinite_loss not in NONFINITE_LOSS:
            raise ValueError(f"train.nonfinite_loss={self.nonfinite_loss!r} is not valid; choose one of: "
                             f"{', '.join(NONFINITE_LOSS)}")
        super().__post_init__()
        for key in ("learning_rate", "head_learning_rate"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ValueError(f"train.{key} must be >= 0, got {value}")


def last_complete_checkpoint(output_dir: str) -> Optional[str]:
    """The newest ``checkpoint-N`` of ``output_dir`` that was written to the end: the Trainer writes
    ``trainer_state.json`` last, so a run killed while saving leaves a folder without it (or with a
    truncated one), which is skipped with a warning. None when there is none."""
    import logging

    for folder in reversed(sort_checkpoints(output_dir) if os.path.isdir(output_dir) else []):  # newest first
        if checkpoint_is_complete(folder):
            return folder
        logging.getLogger(__name__).warning("skipping %s: incomplete (the run stopped while writing it)", folder)
    return None


def checkpoint_is_complete(folder: str) -> bool:
    """Whether the Trainer finished writing ``folder`` (its last file, trainer_state.json, parses)."""
    import json

    try:
        with open(os.path.join(folder, TRAINER_STATE)) as f:
            json.load(f)
        return True
    except (OSError, ValueError):
        return False


def resolve_resume(args: RetrievalTrainingArguments):
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
        raise FileNotFoundError(f"train.resume_from_checkpoint: {ckpt} is incomplete (no readable {TRAINER_STATE}: "
                                f"the run stopped while writing it); resume from an earlier checkpoint or 'last'")
    return ckpt


def check_output_dir(args: RetrievalTrainingArguments) -> None:
    """Refuse to train over a finished model unless asked (resuming is fine).

    Raises:
        FileExistsError: output_dir holds a finished model and neither
            ``train.overwrite_output_dir`` nor ``train.resume_from_checkpoint`` is set.
    """
    from ..models.weights import SETTINGS_FILE

    finished = any(os.path.isfile(os.path.join(args.output_dir, name))  # PE-Rank keeps its weights in sub-folders
                   for name in ("model.safetensors", "adapter_model.safetensors", SETTINGS_FILE))
    if finished and not args.overwrite_output_dir and not args.resume_from_checkpoint:
        raise FileExistsError(
            f"{args.output_dir} already holds a trained model; set train.overwrite_output_dir=true to replace it, "
            "train.resume_from_checkpoint=last to continue, or choose another train.output_dir")
