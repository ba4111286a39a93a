"""Distillation from teacher scores."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models.pooling import dot_scores


def group_scores(q_reps: torch.Tensor, p_reps: torch.Tensor, score_fn: Callable = dot_scores) -> torch.Tensor:
    """Each query against its own G passages: q (B, D), p (B*G, D) -> (B, G).

    >>> group_scores(torch.tensor([[1., 0.]]), torch.tensor([[2., 5.], [3., 1.]])).tolist()
    [[2.0, 3.0]]
    """
    b = q_reps.shape[0]
    p = p_reps.view(b, -1, *p_reps.shape[1:])  # (B, G, ...)
    return torch.stack([score_fn(q_reps[i : i + 1], p[i])[0] for i in range(b)])  # (B, G)


class KLDistillLoss(nn.Module):
    """KL(teacher || student) between softmax distributions over each query's group.

    Args:
        temperature: student scores are divided by it.
        teacher_temperature: teacher scores are divided by it (soften or sharpen the target).
        score_fn: passage scorer, as in :class:`InfoNCELoss`.

    Inputs:
        q_reps (B, D), p_reps (B*G, D) for embedding models, or ``scores`` (B*G,) or (B, G) directly;
        teacher_scores (B, G), the positive first.

    Example:
        >>> loss = KLDistillLoss(temperature=1.0)
        >>> s = torch.tensor([[2., 1., 0.]])
        >>> abs(loss(scores=s, teacher_scores=s).item()) < 1e-6  # same distribution
        True
    """

    def __init__(self, temperature: float = 1.0, teacher_temperature: float = 1.0, score_fn: Callable = dot_scores):
        super().__init__()
        self.temperature = temperature
        self.teacher_temperature = teacher_temperature
        self.score_fn = score_fn

    def forward(self, q_reps=None, p_reps=None, teacher_scores=None, scores=None, **_) -> torch.Tensor:
        if teacher_scores is None:
            raise ValueError("kl_distill needs teacher scores: give pos_scores/neg_scores (or hits[].score) in the data")
        if scores is None:
            scores = group_scores(q_reps, p_reps, self.score_fn)  # (B, G)
        scores = scores.view(teacher_scores.shape)  # rerankers give (B*G,)
        target = F.softmax(teacher_scores.to(scores.dtype) / self.teacher_temperature, dim=-1)  # (B, G)
        log_student = F.log_softmax(scores / self.temperature, dim=-1)  # (B, G)
        return F.kl_div(log_student, target, reduction="batchmean")
