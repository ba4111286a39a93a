"""PE-Rank objectives (Liu et al., 2024): passage-text reconstruction from one passage token
(stage 1, alignment), ListMLE over the decoding steps with and without the passages' text in the
prompt, and a KL term pulling the embedding-only step distributions to the contextual ones (stage 2)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..kinds import PE_RANK_LOSSES


def stepwise_listmle(step_logits: torch.Tensor, order: torch.Tensor, valid: Optional[torch.Tensor] = None,
                     steps: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ListMLE over decoding steps: at step t the target passage ``order[t]`` against the passages
    not emitted before it, with that step's own logits. Mean over the batch of the summed steps.

    Args:
        step_logits: (B, N, N), ``step_logits[b, t, j]``: logit of passage j at step t.
        order: (B, N) the target permutation (passage indices, best first).
        valid: (B, N) bool, real passages (rankings shorter than N are padded); steps past a
            ranking's length and padded passages count for nothing.
        steps: (B, N) bool, the steps that count (e.g. not those where every passage left is tied,
            whose target order is arbitrary); all when None.

    >>> s = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [5.0, 5.0, 4.0]]])
    >>> order = torch.tensor([[0, 2, 1]])
    >>> expected = (torch.logsumexp(s[0, 0], 0) - 2.0) + (torch.logsumexp(s[0, 1, [1, 2]], 0) - 1.0) + 0.0
    >>> torch.isclose(stepwise_listmle(s, order), expected).item()
    True
    """
    b, n, _ = step_logits.shape
    valid = torch.ones(b, n, dtype=torch.bool, device=step_logits.device) if valid is None else valid
    # emitted[b, t, j]: passage j was emitted before step t
    onehot = F.one_hot(order, n).to(torch.bool) & valid.gather(1, order).unsqueeze(-1)  # (B, N, N): step -> passage
    emitted = torch.cumsum(onehot.long(), dim=1) - onehot.long()  # (B, N, N) exclusive prefix
    allowed = valid.unsqueeze(1) & (emitted == 0)  # (B, N, N) candidates at each step
    masked = step_logits.masked_fill(~allowed, float("-inf"))
    target = step_logits.gather(2, order.unsqueeze(-1)).squeeze(-1)  # (B, N)
    step_valid = valid.gather(1, order)  # (B, N) steps whose target is a real passage
    if steps is not None:
        step_valid = step_valid & steps
    nll = torch.logsumexp(masked, dim=-1) - target  # (B, N)
    return nll.masked_fill(~step_valid, 0.0).sum(1).mean()


def stepwise_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, order: torch.Tensor,
                valid: Optional[torch.Tensor] = None, steps: Optional[torch.Tensor] = None) -> torch.Tensor:
    """KL(teacher || student) of the per-step distributions over the passages still to emit,
    summed over steps, mean over the batch (the teacher is the contextual pass, detached).

    >>> s = torch.randn(2, 3, 3); order = torch.tensor([[0, 1, 2], [2, 1, 0]])
    >>> abs(stepwise_kl(s, s, order).item()) < 1e-6
    True
    """
    b, n, _ = student_logits.shape
    valid = torch.ones(b, n, dtype=torch.bool, device=student_logits.device) if valid is None else valid
    onehot = F.one_hot(order, n).to(torch.bool) & valid.gather(1, order).unsqueeze(-1)
    allowed = valid.unsqueeze(1) & ((torch.cumsum(onehot.long(), 1) - onehot.long()) == 0)  # (B, N, N)
    log_s = F.log_softmax(student_logits.masked_fill(~allowed, float("-inf")), -1)
    log_t = F.log_softmax(teacher_logits.detach().masked_fill(~allowed, float("-inf")), -1)
    kl = (log_t.exp() * (log_t - log_s)).masked_fill(~allowed, 0.0).sum(-1)  # (B, N)
    step_valid = valid.gather(1, order) if steps is None else valid.gather(1, order) & steps
    return kl.masked_fill(~step_valid, 0.0).sum(1).mean()



class PERankLoss(nn.Module):
    """Weighted parts of the PE-Rank objective, returned as a dict (summed and logged by the trainer).

    Args:
        parts: names from ``align`` (stage 1), ``listmle``, ``contextual_listmle``, ``kl`` (stage 2).
        weights: a weight per part (default 1).

    Inputs (from :meth:`rag_retrieval.models.PERank.forward`): ``align_logits`` (B, T, V) and
    ``align_labels`` (B, T) for ``align``; ``step_logits`` / ``context_logits`` (B, N, N), ``orders``
    (B, N), ``valid`` (B, N) and ``step_mask`` (B, N, the steps that count) for the ranking parts.

    Example:
        >>> loss = PERankLoss(["listmle", "kl"], {"kl": 0.5})
        >>> s = torch.zeros(1, 2, 2); o = torch.tensor([[1, 0]]); v = torch.ones(1, 2, dtype=torch.bool)
        >>> {k: round(x.item(), 4) for k, x in loss(step_logits=s, context_logits=s, orders=o, valid=v).items()}
        {'listmle': 0.6931, 'kl': 0.0}
    """

    def __init__(self, parts, weights: Optional[dict] = None):
        super().__init__()
        unknown = [p for p in parts if p not in PE_RANK_LOSSES]
        if unknown or not parts:
            raise ValueError(f"unknown PE-Rank loss part(s) {unknown}; choose from: {', '.join(PE_RANK_LOSSES)}")
        if "align" in parts and len(parts) > 1:
            raise ValueError("loss 'align' is stage 1 on its own; stage 2 combines listmle, contextual_listmle, kl")
        self.parts = list(parts)
        self.weights = dict(weights or {})

    def forward(self, step_logits=None, context_logits=None, orders=None, valid=None, align_logits=None,
                align_labels=None, step_mask=None, **_) -> dict:
        out = {}
        for part in self.parts:
            if part == "align":
                value = F.cross_entropy(align_logits.reshape(-1, align_logits.shape[-1]).float(),
                                        align_labels.reshape(-1), ignore_index=-100)
            elif part == "listmle":
                value = stepwise_listmle(step_logits.float(), orders, valid, step_mask)
            elif part == "contextual_listmle":
                value = stepwise_listmle(context_logits.float(), orders, valid, step_mask)
            else:
                value = stepwise_kl(context_logits.float(), step_logits.float(), orders, valid, step_mask)
            out[part] = self.weights.get(part, 1.0) * value
        return out
