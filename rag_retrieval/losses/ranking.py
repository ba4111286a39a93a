"""Ranking losses for rerankers: pointwise, pairwise and listwise.

Every loss takes ``scores`` (B*G,) or (B, G) and ``labels`` (B, G) (the positive first, as the
grouped datasets give them; graded labels allowed), and returns the mean over queries.
``scores`` are reshaped with ``labels``' shape.
"""

from __future__ import annotations

import math  # noqa: F401 (used by the doctests)

import torch
import torch.nn.functional as F
from torch import nn


def _grouped(scores: torch.Tensor, labels: torch.Tensor) -> tuple:
    labels = labels.to(scores.dtype)
    return scores.view(labels.shape), labels  # (B, G), (B, G)


def _pair_logistic(scores: torch.Tensor, sigma: float) -> torch.Tensor:
    """log(1 + exp(-sigma (s_i - s_j))) for every pair of a group: (B, G) -> (B, G, G)."""
    return F.softplus(-sigma * (scores.unsqueeze(2) - scores.unsqueeze(1)))


def _soft_cross_entropy(scores: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over queries of -sum target * log softmax(scores / temperature); target rows sum to 1."""
    return -(target * F.log_softmax(scores / temperature, dim=-1)).sum(-1).mean()


class PointwiseBCELoss(nn.Module):
    """Binary cross-entropy of each (query, doc) logit against a label in [0, 1] (hard or soft).

    Example:
        >>> loss = PointwiseBCELoss()
        >>> round(loss(torch.tensor([0.0, 0.0]), torch.tensor([[1.0, 0.0]])).item(), 4)  # log 2
        0.6931
    """

    def forward(self, scores, labels, **_):
        scores, labels = _grouped(scores, labels)
        if labels.min() < 0 or labels.max() > 1:
            raise ValueError("bce needs labels in [0, 1]; use a listwise or pairwise loss for graded labels")
        return F.binary_cross_entropy_with_logits(scores, labels)


class PointwiseMSELoss(nn.Module):
    """Mean squared error of the raw scores against teacher scores when given, else the labels.

    Example:
        >>> PointwiseMSELoss()(torch.tensor([1.0, 3.0]), torch.tensor([[1.0, 0.0]])).item()
        4.5
    """

    def forward(self, scores, labels, teacher_scores=None, **_):
        scores, labels = _grouped(scores, labels)
        target = teacher_scores.to(scores.dtype) if teacher_scores is not None else labels
        return F.mse_loss(scores, target)


class RankNetLoss(nn.Module):
    """Pairwise logistic loss over pairs with label_i > label_j, weighted by label_i - label_j.

    Example:
        >>> round(RankNetLoss()(torch.tensor([0.0, 0.0]), torch.tensor([[1.0, 0.0]])).item(), 4)  # log(1 + e^0)
        0.6931
    """

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        self.sigma = sigma

    def forward(self, scores, labels, **_):
        scores, labels = _grouped(scores, labels)
        weight = (labels.unsqueeze(2) - labels.unsqueeze(1)).clamp(min=0)  # (B, G, G): l_i - l_j where > 0
        return (weight * _pair_logistic(scores, self.sigma)).sum() / weight.gt(0).sum().clamp(min=1)


class ListwiseCELoss(nn.Module):
    """Softmax cross-entropy over each group, the target being the labels normalised to sum 1
    (for one positive: plain cross-entropy with the positive as class).

    Example:
        >>> round(ListwiseCELoss()(torch.tensor([0.0, 0.0]), torch.tensor([[1.0, 0.0]])).item(), 4)  # log 2
        0.6931
    """

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        self.temperature = temperature

    def forward(self, scores, labels, **_):
        scores, labels = _grouped(scores, labels)
        target = labels.clamp(min=0)
        target = target / target.sum(-1, keepdim=True).clamp(min=1e-12)  # (B, G)
        return _soft_cross_entropy(scores, target, self.temperature)


class ListNetLoss(nn.Module):
    """ListNet (top-one): cross-entropy between softmax(labels / label_temperature) and softmax(scores).

    Example:
        >>> round(ListNetLoss()(torch.tensor([0.0, 0.0]), torch.tensor([[0.0, 0.0]])).item(), 4)  # uniform vs uniform
        0.6931
    """

    def __init__(self, temperature: float = 1.0, label_temperature: float = 1.0):
        super().__init__()
        self.temperature = temperature
        self.label_temperature = label_temperature

    def forward(self, scores, labels, **_):
        scores, labels = _grouped(scores, labels)
        target = F.softmax(labels / self.label_temperature, dim=-1)  # (B, G)
        return _soft_cross_entropy(scores, target, self.temperature)


def plackett_luce_nll(scores: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the permutation ``order`` (B, G) under Plackett-Luce with
    ``scores`` (B, G): sum over i of logsumexp(s_order[i:]) - s_order[i]. Returns (B,).

    >>> round(plackett_luce_nll(torch.tensor([[0.0, 0.0]]), torch.tensor([[0, 1]])).item(), 4)  # log 2 + 0
    0.6931
    """
    ordered = scores.gather(1, order)  # (B, G) scores in the target order
    # log of the sum of exp over the items not yet placed: reverse cumulative logsumexp
    tail = torch.logcumsumexp(ordered.flip(1), dim=1).flip(1)  # (B, G)
    return (tail - ordered).sum(1)


class ListMLELoss(nn.Module):
    """ListMLE: Plackett-Luce likelihood of the ranking by labels (ties in input order).

    Example:
        >>> s = torch.tensor([2.0, 1.0, 0.0]); l = torch.tensor([[2.0, 1.0, 0.0]])
        >>> expected = (torch.logsumexp(s, 0) - 2) + (torch.logsumexp(s[1:], 0) - 1)
        >>> torch.isclose(ListMLELoss()(s, l), expected).item()
        True
    """

    def forward(self, scores, labels, **_):
        scores, labels = _grouped(scores, labels)
        order = torch.sort(labels, dim=1, descending=True, stable=True).indices  # (B, G)
        return plackett_luce_nll(scores, order).mean()


class LambdaLoss(nn.Module):
    """Pairwise logistic loss weighted by |delta NDCG| of swapping the pair (LambdaRank weighting).

    For each pair with label_i > label_j, the weight is how much NDCG would change if the two
    documents swapped their current ranks (by the scores), so mistakes near the top cost more.
    Gains are ``2**label - 1``.

    Example:
        >>> s = torch.tensor([0.0, 1.0]); l = torch.tensor([[1.0, 0.0]])
        >>> # ranks by score: doc1 first, doc0 second; |dNDCG| = |(1 - 1/log2(3))| / IDCG(=1)
        >>> w = 1 - 1 / math.log2(3)
        >>> torch.isclose(LambdaLoss()(s, l), torch.tensor(w * math.log(1 + math.exp(1)))).item()
        True
    """

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        self.sigma = sigma

    def forward(self, scores, labels, **_):
        scores, labels = _grouped(scores, labels)
        g = scores.shape[1]
        gains = torch.pow(2.0, labels) - 1  # (B, G)
        ranks = torch.empty_like(scores, dtype=torch.long)
        ranks.scatter_(1, scores.detach().argsort(1, descending=True),
                       torch.arange(g, device=scores.device).expand_as(scores))  # (B, G) 0-based rank of each doc
        discount = 1.0 / torch.log2(ranks.to(scores.dtype) + 2)  # (B, G)
        ideal = torch.sort(gains, dim=1, descending=True).values
        idcg = (ideal / torch.log2(torch.arange(g, device=scores.device, dtype=scores.dtype) + 2)).sum(1)  # (B,)
        delta = ((gains.unsqueeze(2) - gains.unsqueeze(1)) * (discount.unsqueeze(2) - discount.unsqueeze(1))).abs()
        delta = delta / idcg.clamp(min=1e-12).view(-1, 1, 1)  # (B, G, G)
        valid = (labels.unsqueeze(2) > labels.unsqueeze(1)).to(scores.dtype)  # (B, G, G) pairs with l_i > l_j
        return (valid * delta * _pair_logistic(scores, self.sigma)).sum() / valid.sum().clamp(min=1)


__all__ = ["LambdaLoss", "ListMLELoss", "ListNetLoss", "ListwiseCELoss", "PointwiseBCELoss", "PointwiseMSELoss",
           "RankNetLoss", "plackett_luce_nll"]
