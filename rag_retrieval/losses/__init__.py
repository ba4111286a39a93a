"""Losses take tensors, never the model: ``loss(**model_outputs, **targets)`` -> scalar or dict.

``EMBEDDING_LOSSES`` and ``RANKING_LOSSES`` map each ``loss.name`` part to its maker; the names a
kind accepts are listed once, in :mod:`rag_retrieval.kinds` (a test checks both lists agree).
Adding a loss: its file, a maker here, and its name in the kinds table.
"""

from __future__ import annotations

from torch import nn

from .. import kinds
from .contrastive import InfoNCELoss
from .distill import KLDistillLoss, group_scores
from .layerwise import LayerwiseLoss
from .matryoshka import MatryoshkaLoss
from .pe_rank import PERankLoss, stepwise_kl, stepwise_listmle
from .ranking import (LambdaLoss, ListMLELoss, ListNetLoss, ListwiseCELoss, PointwiseBCELoss, PointwiseMSELoss,
                      RankNetLoss)


class CombinedLoss(nn.Module):
    """Weighted sum of named losses, returned as a dict of parts (summed and logged by the trainer)."""

    def __init__(self, parts: dict, weights: dict | None = None):
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.weights = weights or {}

    def forward(self, *args, **kwargs) -> dict:
        return {name: self.weights.get(name, 1.0) * loss(*args, **kwargs) for name, loss in self.parts.items()}


def _combine(name: str, makers: dict, kl_weight: float) -> nn.Module:
    """``"a+b"`` -> CombinedLoss of makers a and b; unknown names list the options."""
    names = name.split("+")
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"unknown loss '{name}'; choose from: {', '.join(makers)} (join with '+')")
    if len(names) == 1:
        return makers[names[0]]()
    return CombinedLoss({n: makers[n]() for n in names}, {"kl_distill": kl_weight})


# name -> maker(loss_args, temperature, score) for bi-encoders and ColBERT (score: {"score_fn": maxsim} or {})
EMBEDDING_LOSSES = {
    "infonce": lambda a, t, score: InfoNCELoss(t, in_batch_negatives=a.in_batch_negatives,
                                               cross_device=a.cross_device_negatives, **score),
    "kl_distill": lambda a, t, score: KLDistillLoss(t, a.teacher_temperature, **score),
}


def build_embedding_loss(loss_args, normalize: bool = True, score_fn=None, default_temperature: float = 0.02):
    """The loss of the ``loss:`` config section for bi-encoders (dot product, temperature default
    0.02) and ColBERT (``score_fn``: MaxSim, temperature default 1)."""
    t = loss_args.temperature if loss_args.temperature is not None else default_temperature
    score = {"score_fn": score_fn} if score_fn is not None else {}
    makers = {n: (lambda make=make: make(loss_args, t, score)) for n, make in EMBEDDING_LOSSES.items()}
    loss = _combine(loss_args.name or kinds.get("embedding").default_loss, makers, loss_args.kl_weight)
    if loss_args.matryoshka_dims:
        loss = MatryoshkaLoss(loss, loss_args.matryoshka_dims, loss_args.matryoshka_weights, normalize=normalize)
    return loss


RANKING_LOSSES = {
    "bce": lambda a, t: PointwiseBCELoss(),
    "mse": lambda a, t: PointwiseMSELoss(),
    "ranknet": lambda a, t: RankNetLoss(),
    "listwise_ce": lambda a, t: ListwiseCELoss(t),
    "listnet": lambda a, t: ListNetLoss(t),
    "listmle": lambda a, t: ListMLELoss(),
    "lambda": lambda a, t: LambdaLoss(),
    "kl_distill": lambda a, t: KLDistillLoss(t, a.teacher_temperature),
}


def build_ranking_loss(loss_args) -> nn.Module:
    """The loss of the ``loss:`` config section for rerankers (scores are logits: temperature default 1)."""
    t = loss_args.temperature if loss_args.temperature is not None else 1.0
    return _combine(loss_args.name or kinds.get("reranker").default_loss, {n: (lambda make=make: make(loss_args, t)) for n, make in RANKING_LOSSES.items()},
                    loss_args.kl_weight)


__all__ = ["CombinedLoss", "EMBEDDING_LOSSES", "InfoNCELoss", "KLDistillLoss", "LambdaLoss", "LayerwiseLoss", "ListMLELoss",
           "ListNetLoss", "ListwiseCELoss", "MatryoshkaLoss", "PERankLoss", "PointwiseBCELoss", "PointwiseMSELoss",
           "RANKING_LOSSES", "RankNetLoss", "build_embedding_loss", "build_ranking_loss", "group_scores", "stepwise_kl",
           "stepwise_listmle"]
