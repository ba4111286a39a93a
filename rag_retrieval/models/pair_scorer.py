"""What every (query, passage) -> score model shares: sorted batched scoring, checkpointing, weights."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ..utils.batching import length_batches
from .weights import enable_checkpointing, load_encoder_weights, no_split_modules


class PairScorer(nn.Module):
    """Base of :class:`CrossEncoder` and :class:`LLMReranker`.

    Subclasses hold the transformers model in ``self.model`` and the tokenizer in ``self.tokenizer``
    and implement ``tokenize(queries, passages, padding=...)``.
    """

    @property
    def config(self):
        """The transformer's config (the Trainer and DeepSpeed read hidden_size etc. from it)."""
        return self.model.config

    @property
    def _no_split_modules(self) -> list:
        """Layer classes for FSDP's transformer auto-wrap (accelerate reads this on the wrapped model)."""
        return no_split_modules(self.model)

    def score_pairs(self, pairs: Sequence, batch_size: int, normalize: bool,
                    score_fn: Callable[..., torch.Tensor], max_tokens: Optional[int] = None) -> list:
        """``score_fn(**features)`` over ``pairs`` in input order, as a list; sigmoid when ``normalize``.

        Pairs are tokenised once, sorted by token count and padded per batch (little padding).
        A batch holds at most ``batch_size`` pairs and, with ``max_tokens``, at most that many
        padded tokens (but always one pair). ``score_fn`` returns ``(batch,)`` or ``(batch, k)``
        scores (a list of k per pair then).
        """
        if not pairs:
            return []
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        encoded = self.tokenize([q for q, _ in pairs], [d for _, d in pairs], padding=False)
        rows = [{k: v[i] for k, v in encoded.items()} for i in range(len(pairs))]
        order = sorted(range(len(pairs)), key=lambda i: -len(rows[i]["input_ids"]))
        out = None
        with torch.inference_mode():
            for idx in length_batches(order, [len(r["input_ids"]) for r in rows], batch_size, max_tokens):
                features = self.tokenizer.pad([rows[i] for i in idx], return_tensors="pt").to(device)
                scores = score_fn(**features).float().cpu()
                if out is None:
                    out = torch.empty((len(pairs),) + scores.shape[1:])
                out[idx] = scores
        self.train(was_training)
        if normalize:
            out = torch.sigmoid(out)
        return out.tolist()

    def activation_checkpointing_enable(self, **kwargs):
        """Called by the Trainer for ``train.activation_checkpointing`` (``gradient_checkpointing`` in older
        transformers, which calls the alias below); forwarded to the transformer."""
        enable_checkpointing(self.model, **kwargs)

    gradient_checkpointing_enable = activation_checkpointing_enable

    def load_weights(self, checkpoint_dir: str) -> None:
        """Load weights saved by ``save_pretrained`` (resume, best model)."""
        load_encoder_weights(self.model, checkpoint_dir)
