"""Matryoshka representation learning as a wrapper around any embedding loss."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ..models.pooling import truncate_and_normalize


class MatryoshkaLoss(nn.Module):
    """Apply ``base`` to the first ``d`` features of the vectors, for each ``d`` in ``dims``.

    The truncated vectors are re-normalised when ``normalize`` (as at inference), so each prefix
    is a usable embedding. With one dim equal to the full size and weight 1 it equals ``base``.

    Args:
        base: an embedding loss taking ``(q_reps, p_reps, **targets)``; may return a dict of parts.
        dims: truncation sizes, e.g. ``[384, 256, 128]``.
        weights: one per dim (default 1 each).
        normalize: re-normalise after truncation.

    Returns:
        dict ``{"dim_<d>[/part]": weighted loss}``: the trainer sums and logs the parts.
    """

    def __init__(self, base: nn.Module, dims: Sequence[int], weights: Optional[Sequence[float]] = None,
                 normalize: bool = True):
        super().__init__()
        self.base = base
        self.dims = [int(d) for d in dims]
        self.weights = [float(w) for w in weights] if weights else [1.0] * len(self.dims)
        self.normalize = normalize

    def forward(self, q_reps: torch.Tensor, p_reps: torch.Tensor, **targets) -> dict:
        parts = {}
        for dim, weight in zip(self.dims, self.weights):
            q = truncate_and_normalize(q_reps, dim, self.normalize)  # (B, dim)
            p = truncate_and_normalize(p_reps, dim, self.normalize)  # (B*G, dim)
            out = self.base(q, p, **targets)
            items = out.items() if isinstance(out, dict) else [("", out)]
            for name, value in items:
                parts[f"dim_{dim}" + (f"/{name}" if name else "")] = weight * value
        return parts
