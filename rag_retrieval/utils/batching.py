"""Length-bucketed sub-batches: collators split padded rows, models score and merge them."""

from __future__ import annotations

from typing import Optional

CPU_MAX_TOKENS = 4096  # padded tokens per serving batch on CPU (matrix products of more rows ran 10-25% slower)


def split_by_length(features: dict, n: int) -> dict:
    """Split padded rows into ``n`` sub-batches of similar length, each cut to its own longest row.

    Fewer pad tokens are computed (one long pair no longer pads the whole batch); the model
    scores each sub-batch and puts the scores back in row order with ``index``. Works for
    right and left padding (only columns some row of the sub-batch uses are kept).

    Returns:
        ``{"chunks": [features, ...], "index": (N,) original row of each concatenated output}``,
        or ``features`` unchanged when ``n <= 1`` or there are fewer rows than ``n``.

    Example:
        >>> import torch
        >>> f = {"input_ids": torch.tensor([[1, 2, 3], [4, 0, 0], [5, 6, 0], [7, 0, 0]]),
        ...      "attention_mask": torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]])}
        >>> out = split_by_length(f, 2)
        >>> [c["input_ids"].tolist() for c in out["chunks"]], out["index"].tolist()
        ([[[4], [7]], [[5, 6, 0], [1, 2, 3]]], [1, 3, 2, 0])
    """
    import torch

    mask = features["attention_mask"]
    if n <= 1 or mask.shape[0] < n:
        return features
    order = torch.argsort(mask.sum(1), stable=True)
    chunks = []
    for idx in torch.tensor_split(order, n):
        cols = mask[idx].any(0).nonzero().view(-1)
        chunks.append({k: v[idx][:, cols[0]: cols[-1] + 1] for k, v in features.items()})
    return {"chunks": chunks, "index": order}


def merge_chunks(score_fn, features: dict):
    """Scores of features made by :func:`split_by_length` (or plain features), in row order."""
    import torch

    if "chunks" not in features:
        return score_fn(**features)
    scores = torch.cat([score_fn(**chunk) for chunk in features["chunks"]])
    return scores[torch.argsort(features["index"])]


def length_batches(order: list, lengths: list, batch_size: int, max_tokens: Optional[int]) -> list:
    """Consecutive runs of ``order`` (longest first) of at most ``batch_size`` items and, with
    ``max_tokens``, at most that many padded tokens (the run's first item is its longest).

    >>> length_batches([0, 1, 2, 3], [10, 6, 5, 5], batch_size=3, max_tokens=12)
    [[0], [1, 2], [3]]
    """
    out: list = []
    for i in order:
        if out and len(out[-1]) < batch_size and (max_tokens is None
                                                  or (len(out[-1]) + 1) * lengths[out[-1][0]] <= max_tokens):
            out[-1].append(i)
        else:
            out.append([i])
    return out
