"""Calibrated reranker scores: Platt scaling fitted on held-out labelled pairs.

A reranker's raw score is a logit (or a scaled cosine, or a yes-token log-odds) whose sigmoid is
rarely a probability: a RAG pipeline cannot pick a threshold on it to drop irrelevant context.
``rag-retrieval calibrate`` fits ``p = sigmoid(a * score + b)`` by maximum likelihood on a labelled
file's pairs (relevant = label > 0) and writes ``calibration.json`` into the model folder; every
``Reranker`` then returns these probabilities for ``compute_score(..., normalize=True)`` and
``rerank(..., normalize=True)``. The file is this project's own: sentence-transformers and
FlagEmbedding ignore it. Quality of a calibration: expected calibration error (ECE, 10 equal-width
bins) and the Brier score, both lower is better.
"""

from __future__ import annotations

import json
import math
import os
from typing import Optional, Sequence

import numpy as np

FILE = "calibration.json"


def fit_platt(scores: Sequence[float], labels: Sequence[float], iterations: int = 100) -> tuple:
    """``(a, b)`` maximising the likelihood of ``labels`` (> 0: relevant) under ``sigmoid(a * s + b)``
    (Newton's method on the two parameters, a small ridge term keeps it finite on separable data).

    >>> a, b = fit_platt([-2.0, -1.0, 1.0, 2.0, 0.5, -0.5], [0, 0, 1, 1, 0, 1])
    >>> a > 0
    True
    """
    s = np.asarray(scores, dtype=np.float64)
    y = (np.asarray(labels, dtype=np.float64) > 0).astype(np.float64)
    if len(s) == 0 or y.min() == y.max():
        raise ValueError("calibration needs both relevant (label > 0) and irrelevant pairs")
    x = np.stack([s, np.ones_like(s)], 1)
    w = np.zeros(2)
    ridge = 1e-6 * len(s)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + ridge * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def apply(scores: Sequence[float], a: float, b: float) -> list:
    """``sigmoid(a * s + b)`` of each score."""
    return [1 / (1 + math.exp(-min(max(a * float(s) + b, -60.0), 60.0))) for s in scores]


def sigmoid(scores: Sequence[float]) -> list:
    return apply(scores, 1.0, 0.0)


def ece(probs: Sequence[float], labels: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error: the pair-weighted mean gap between predicted and observed
    relevance over ``bins`` equal-width probability bins.

    >>> round(ece([0.9, 0.9, 0.1, 0.1], [1, 1, 0, 0]), 4)
    0.1
    """
    p = np.asarray(probs, dtype=np.float64)
    y = (np.asarray(labels, dtype=np.float64) > 0).astype(np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        inside = which == k
        if inside.any():
            total += inside.sum() * abs(p[inside].mean() - y[inside].mean())
    return float(total / max(len(p), 1))


def brier(probs: Sequence[float], labels: Sequence[float]) -> float:
    """Mean squared error of the probabilities against 0/1 relevance."""
    p = np.asarray(probs, dtype=np.float64)
    y = (np.asarray(labels, dtype=np.float64) > 0).astype(np.float64)
    return float(np.mean((p - y) ** 2))


def threshold_for_recall(probs: Sequence[float], labels: Sequence[float], recall: float) -> float:
    """The highest threshold t such that keeping the pairs with ``prob >= t`` keeps at least
    ``recall`` of the relevant ones.

    >>> threshold_for_recall([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0], 0.5), threshold_for_recall([0.9, 0.8, 0.3, 0.2], [1, 0, 1, 0], 1.0)
    (0.9, 0.3)
    """
    if not 0 < recall <= 1:
        raise ValueError(f"recall must be in (0, 1], got {recall}")
    relevant = sorted((float(p) for p, y in zip(probs, labels) if y > 0), reverse=True)
    if not relevant:
        raise ValueError("no relevant pair (label > 0) to keep")
    return relevant[max(math.ceil(recall * len(relevant)) - 1, 0)]


def save(model_dir: str, a: float, b: float, fitted_on: dict) -> str:
    """Write ``calibration.json`` into ``model_dir``; returns its path."""
    path = os.path.join(model_dir, FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"method": "platt", "a": a, "b": b, "fitted_on": fitted_on}, f, indent=1, ensure_ascii=False)
    os.replace(tmp, path)
    return path


def load(model_dir: Optional[str]) -> Optional[tuple]:
    """``(a, b)`` from a model folder's ``calibration.json``, or None when it has none."""
    path = os.path.join(model_dir, FILE) if model_dir and os.path.isdir(model_dir) else None
    if path is None or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    return float(saved["a"]), float(saved["b"])
