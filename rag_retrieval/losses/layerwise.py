"""Layerwise rerankers score after several layers; each layer's scores get the same ranking loss."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class LayerwiseLoss(nn.Module):
    """Apply ``base`` to the scores of every cutoff layer and return the parts by layer (summed by
    the trainer), so inference can stop after any of them (bge-reranker-v2-minicpm-layerwise style).

    Args:
        base: a ranking loss taking ``scores`` (B*G,) and the targets (labels, teacher scores).
        cutoff_layers: the layer counts, one per score column (names of the logged parts).
        weights: one weight per layer; default 1 each.

    Inputs:
        scores (B*G, K), one column per cutoff layer; the targets are passed through.

    Example:
        >>> from rag_retrieval.losses import ListwiseCELoss
        >>> loss = LayerwiseLoss(ListwiseCELoss(), [1, 2])
        >>> parts = loss(scores=torch.zeros(2, 2), labels=torch.tensor([[1.0, 0.0]]))
        >>> {k: round(v.item(), 4) for k, v in parts.items()}  # log 2 for each layer
        {'layer1': 0.6931, 'layer2': 0.6931}
    """

    def __init__(self, base: nn.Module, cutoff_layers: Sequence[int], weights: Sequence[float] | None = None):
        super().__init__()
        self.base = base
        self.cutoff_layers = list(cutoff_layers)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.cutoff_layers)
        if len(self.weights) != len(self.cutoff_layers):
            raise ValueError("LayerwiseLoss needs one weight per cutoff layer")

    def forward(self, scores: torch.Tensor, **targets) -> dict:
        if scores.dim() != 2 or scores.shape[1] != len(self.cutoff_layers):
            raise ValueError(f"layerwise scores must be (N, {len(self.cutoff_layers)}), got {tuple(scores.shape)}")
        parts = {}
        for k, (layer, weight) in enumerate(zip(self.cutoff_layers, self.weights)):
            out = self.base(scores=scores[:, k], **targets)  # (B*G,) scores of this layer
            if isinstance(out, dict):
                parts.update({f"layer{layer}/{name}": weight * value for name, value in out.items()})
            else:
                parts[f"layer{layer}"] = weight * out
        return parts
