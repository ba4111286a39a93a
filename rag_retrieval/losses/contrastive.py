"""Contrastive losses for embedding and late-interaction models."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models.pooling import dot_scores
from ..utils.dist import all_gather_with_grad, world


class InfoNCELoss(nn.Module):
    """InfoNCE (softmax cross-entropy) of each query's positive against its negatives.

    Negatives are the query's own hard negatives plus, with ``in_batch_negatives``, every other
    passage of the batch, and with ``cross_device`` the passages of every process (gathered with
    gradients, so the loss and its gradients equal those of one process holding the whole
    global batch).

    Args:
        temperature: scores are divided by it (0.01-0.05 for normalised embeddings).
        score_fn: ``(q (Nq, ...), p (Np, ...)) -> (Nq, Np)``; dot product by default, MaxSim for ColBERT.
        in_batch_negatives: use other queries' passages as negatives.
        cross_device: gather passages from all processes (only with ``in_batch_negatives``).

    Inputs:
        q_reps: (B, D) query vectors.  p_reps: (B*G, D) passages, query-major, positive first.

    Returns:
        scalar loss, the mean over this process's queries.

    Example:
        >>> loss = InfoNCELoss(temperature=1.0)
        >>> q = torch.tensor([[1., 0.], [0., 1.]]); p = torch.tensor([[1., 0.], [0., 1.]])
        >>> round(loss(q, p).item(), 4)  # -log(e / (e + 1))
        0.3133
    """

    def __init__(
        self,
        temperature: float = 0.02,
        score_fn: Callable = dot_scores,
        in_batch_negatives: bool = True,
        cross_device: bool = True,
    ):
        super().__init__()
        self.temperature = temperature
        self.score_fn = score_fn
        self.in_batch_negatives = in_batch_negatives
        self.cross_device = cross_device and in_batch_negatives

    def forward(self, q_reps: torch.Tensor, p_reps: torch.Tensor, **_) -> torch.Tensor:
        b = q_reps.shape[0]
        group = p_reps.shape[0] // b
        if not self.in_batch_negatives:
            p = p_reps.view(b, group, *p_reps.shape[1:])  # (B, G, ...)
            scores = torch.stack([self.score_fn(q_reps[i : i + 1], p[i])[0] for i in range(b)])  # (B, G)
            target = torch.zeros(b, dtype=torch.long, device=q_reps.device)
            return F.cross_entropy(scores / self.temperature, target)
        rank = 0
        if self.cross_device:
            rank, _ = world()
            p_reps = all_gather_with_grad(p_reps)  # (world*B*G, D)
        scores = self.score_fn(q_reps, p_reps) / self.temperature  # (B, world*B*G)
        target = rank * b * group + torch.arange(b, device=q_reps.device) * group  # (B,) index of each positive
        return F.cross_entropy(scores, target)
