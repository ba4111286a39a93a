"""Losses take tensors, never the model: ``loss(**model_outputs, **targets)`` -> scalar or dict."""

from __future__ import annotations

from torch import nn

from .contrastive import InfoNCELoss
from .distill import KLDistillLoss, group_scores
from .matryoshka import MatryoshkaLoss


class CombinedLoss(nn.Module):
    """Weighted sum of named losses, returned as a dict of parts (summed and logged by the trainer)."""

    def __init__(self, parts: dict, weights: dict | None = None):
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.weights = weights or {}

    def forward(self, *args, **kwargs) -> dict:
        return {name: self.weights.get(name, 1.0) * loss(*args, **kwargs) for name, loss in self.parts.items()}


def build_embedding_loss(loss_args, normalize: bool = True) -> nn.Module:
    """The loss of the ``loss:`` config section for bi-encoders (names listed in the error)."""
    makers = {
        "infonce": lambda: InfoNCELoss(loss_args.temperature, in_batch_negatives=loss_args.in_batch_negatives,
                                       cross_device=loss_args.cross_device_negatives),
        "kl_distill": lambda: KLDistillLoss(loss_args.temperature, loss_args.teacher_temperature),
    }
    names = loss_args.name.split("+")
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"unknown loss '{loss_args.name}'; choose from: {', '.join(makers)} (join with '+')")
    loss = makers[names[0]]() if len(names) == 1 else CombinedLoss(
        {n: makers[n]() for n in names}, {"kl_distill": loss_args.kl_weight})
    if loss_args.matryoshka_dims:
        loss = MatryoshkaLoss(loss, loss_args.matryoshka_dims, loss_args.matryoshka_weights, normalize=normalize)
    return loss


__all__ = ["CombinedLoss", "InfoNCELoss", "KLDistillLoss", "MatryoshkaLoss", "build_embedding_loss", "group_scores"]
