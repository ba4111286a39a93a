"""Pooling and similarity as pure functions, shared by training and inference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

POOLING_MODES = ("cls", "mean", "last_token")


def cls_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """First token of each sequence (right padding assumed, as BERT-style tokenizers do).

    >>> cls_pool(torch.arange(6.).view(1, 3, 2), torch.ones(1, 3)).tolist()
    [[0.0, 1.0]]
    """
    return hidden[:, 0]  # (B, D)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the non-padding token states.

    >>> h = torch.tensor([[[1., 1.], [3., 3.], [100., 100.]]])
    >>> mean_pool(h, torch.tensor([[1, 1, 0]])).tolist()
    [[2.0, 2.0]]
    """
    mask = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, D)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-padding token per row, for left and right padding alike.

    >>> last_token_index(torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1], [1, 1, 1, 1]])).tolist()
    [2, 3, 3]
    """
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)  # (B, L)
    return (positions * mask.long()).argmax(dim=1)  # (B,)


def last_token_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of the last real token (decoder-only embedders), padding-side safe.

    >>> h = torch.arange(8.).view(2, 2, 2)
    >>> last_token_pool(h, torch.tensor([[1, 0], [0, 1]])).tolist()
    [[0.0, 1.0], [6.0, 7.0]]
    """
    idx = last_token_index(mask)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]  # (B, D)


POOLERS = {"cls": cls_pool, "mean": mean_pool, "last_token": last_token_pool}


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token states (B, L, D) with attention mask (B, L) into (B, D) by ``mode``."""
    if mode not in POOLERS:
        raise ValueError(f"unknown pooling '{mode}'; choose one of: {', '.join(POOLERS)}")
    return POOLERS[mode](hidden, mask)


def truncate_and_normalize(reps: torch.Tensor, dim: int | None, normalize: bool) -> torch.Tensor:
    """Keep the first ``dim`` features (Matryoshka) and L2-normalise when asked.

    >>> truncate_and_normalize(torch.tensor([[3., 4., 12.]]), 2, True).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    if dim is not None:
        reps = reps[..., :dim]
    return F.normalize(reps, p=2, dim=-1) if normalize else reps


def dot_scores(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """All-pairs dot product: q (Nq, D), p (Np, D) -> (Nq, Np).

    >>> dot_scores(torch.tensor([[1., 0.]]), torch.tensor([[2., 3.], [4., 5.]])).tolist()
    [[2.0, 4.0]]
    """
    return q @ p.transpose(0, 1)


def maxsim(q: torch.Tensor, p: torch.Tensor, q_mask: torch.Tensor | None = None,
           p_mask: torch.Tensor | None = None, normalize_by_query_len: bool = False) -> torch.Tensor:
    """Late-interaction (ColBERT) scores of all pairs: for each query token, its best dot product
    over the passage's tokens, summed over the query's tokens.

    q (Nq, Lq, D) and p (Np, Lp, D) are token vectors; masks (N, L) mark the tokens that count
    (1) and those that do not (0: padding, punctuation), on either side. A passage with no token
    left scores 0. ``normalize_by_query_len`` divides by the number of counted query tokens
    (bge-m3's colbert score).

    >>> q = torch.tensor([[[1., 0.], [0., 1.], [5., 5.]]])              # 1 query, 3 tokens (last masked)
    >>> p = torch.tensor([[[1., 0.], [.6, .8], [9., 9.]],                # passage 0: last token masked
    ...                   [[0., 1.], [0., 1.], [0., 1.]]])              # passage 1: all tokens count
    >>> qm = torch.tensor([[1, 1, 0]]); pm = torch.tensor([[1, 1, 0], [1, 1, 1]])
    >>> maxsim(q, p, qm, pm).tolist()                                   # [1 + .8, 0 + 1]
    [[1.7999999523162842, 1.0]]
    >>> maxsim(q, p, qm, pm, normalize_by_query_len=True).tolist()
    [[0.8999999761581421, 0.5]]
    """
    sim = torch.einsum("qid,pjd->qpij", q, p)  # (Nq, Np, Lq, Lp)
    if p_mask is not None:
        sim = sim.masked_fill(~p_mask.bool()[None, :, None, :], float("-inf"))
    best = sim.max(dim=-1).values  # (Nq, Np, Lq)
    best = best.masked_fill(torch.isinf(best), 0.0)  # passages with no counted token
    if q_mask is None:
        q_mask = torch.ones(q.shape[:2], dtype=best.dtype, device=q.device)
    q_mask = q_mask.to(best.dtype)
    scores = (best * q_mask[:, None, :]).sum(-1)  # (Nq, Np)
    if normalize_by_query_len:
        scores = scores / q_mask.sum(-1, keepdim=True).clamp(min=1)
    return scores
