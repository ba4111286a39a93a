"""TrainingArguments plus the few run-safety keys of rag-retrieval (the ``train:`` section)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from transformers import TrainingArguments

from ..utils.devices import bf16_supported

NONFINITE_LOSS = ("stop", "skip")
MODEL_CARD_MODES = ("auto", "overwrite", "off")


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
    - ``bf16: auto``: bf16 autocast where it is fast (a bf16 GPU, or a CPU with bf16 matrix units).
    - ``grad_cache_chunk``: embedding and ColBERT kinds: encode a batch in chunks of this many texts
      whose activations are recomputed in the backward (gradient caching: a batch far larger than fits
      in memory, the same gradients); 0 or None: off.
    - ``model_card``: README.md written into output_dir after training (rag_retrieval.train.card):
      ``auto`` (keeps a README.md this project did not write), ``overwrite``, ``off``.
    - ``push_to_hub`` (with ``hub_model_id``, ``hub_token``, ``hub_private_repo``, ``hub_revision``):
      the finished folder goes up in one commit after the final save and the card
      (rag_retrieval.train.hub); kept here as ``push_final``, the Trainer's own pushing stays off.
    """

    overwrite_output_dir: bool = field(default=False, metadata={"help": "replace a finished model in output_dir"})
    head_learning_rate: Optional[float] = field(
        default=None, metadata={"help": "learning rate of newly initialised weights (a new head); None: learning_rate"})
    nonfinite_loss: Literal["stop", "skip"] = field(
        default="stop", metadata={"help": "a NaN/inf loss: 'stop' the run with an error, or 'skip' the batch"})
    grad_cache_chunk: Optional[int] = field(
        default=None, metadata={"help": "embedding/ColBERT: texts per chunk of the cached forward; 0/None: off"})
    model_card: Literal["auto", "overwrite", "off"] = field(
        default="auto", metadata={"help": "README.md model card after training: auto (keep a user's own), overwrite, off"})
    bf16: Union[bool, Literal["auto"]] = field(
        default=False, metadata={"help": "bf16 autocast; 'auto': where it is fast (bf16 GPU, CPU with bf16 units)"})

    def __post_init__(self):  # types and ranges are checked by rag_retrieval.config before this runs
        if self.nonfinite_loss not in NONFINITE_LOSS:
            raise ValueError(f"train.nonfinite_loss={self.nonfinite_loss!r} is not valid; choose one of: "
                             f"{', '.join(NONFINITE_LOSS)}")
        if self.model_card not in MODEL_CARD_MODES:
            raise ValueError(f"train.model_card={self.model_card!r} is not valid; choose one of: "
                             f"{', '.join(MODEL_CARD_MODES)}")
        if self.grad_cache_chunk is not None and self.grad_cache_chunk < 0:
            raise ValueError(f"train.grad_cache_chunk={self.grad_cache_chunk}: give 0 (off) or a number of texts per "
                             f"chunk (e.g. 32)")
        if self.bf16 == "auto":
            self.bf16 = bf16_supported(bool(self.use_cpu))
        super().__post_init__()
        self.push_final, self.push_to_hub = bool(self.push_to_hub), False  # pushed by train.hub, last
