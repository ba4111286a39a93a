"""Is a gain real? Paired tests of one model's per-query metrics against a baseline's on the same queries.

For each metric: the mean difference, a paired bootstrap 95% interval (queries resampled with
replacement), a two-sided paired randomization p-value (each query's difference flipped in sign at
random: the chance of a mean difference at least this large if the two models were exchangeable),
and the queries won, tied and lost. Both are seeded, so a comparison prints the same numbers each
time. ``rag-retrieval eval --model A --model B`` compares each model with the first; a training run
compares its model after training with the one before (``significance.json`` in its output folder).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

RESAMPLES = 10_000
CHUNK = 1_000  # resamples drawn at once (memory: CHUNK x queries)


def paired_test(baseline: Sequence[float], model: Sequence[float], resamples: int = RESAMPLES,
                seed: int = 0) -> dict:
    """``{"delta", "ci95": [lo, hi], "p_value", "wins", "ties", "losses"}`` of ``model - baseline``.

    >>> same = paired_test([0.5, 1.0, 0.0, 0.25], [0.5, 1.0, 0.0, 0.25])
    >>> same["delta"], same["ci95"], same["p_value"], same["ties"]
    (0.0, [0.0, 0.0], 1.0, 4)
    """
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(model, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired_test needs two equal, non-empty lists of per-query values, got {a.shape} and {b.shape}")
    diff = b - a
    observed = float(diff.mean())
    rng = np.random.default_rng(seed)
    boot, extreme = [], 0
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        boot.append(diff[rng.integers(0, len(diff), size=(size, len(diff)))].mean(1))
        flipped = (np.where(rng.random((size, len(diff))) < 0.5, -1.0, 1.0) * diff).mean(1)
        extreme += int(np.sum(np.abs(flipped) >= abs(observed) - 1e-12))
    lo, hi = np.percentile(np.concatenate(boot), [2.5, 97.5])
    eps = 1e-12
    return {"delta": round(observed, 6), "ci95": [round(float(lo), 6), round(float(hi), 6)],
            "p_value": round((extreme + 1) / (resamples + 1), 6), "wins": int(np.sum(diff > eps)),
            "ties": int(np.sum(np.abs(diff) <= eps)), "losses": int(np.sum(diff < -eps))}


def compare(baseline: dict, model: dict, metrics: Optional[Sequence[str]] = None, resamples: int = RESAMPLES,
            seed: int = 0) -> list:
    """One :func:`paired_test` per metric both per-query dicts ({metric: [values]}) hold, as
    ``{"metric", "delta", "ci95", "p_value", "wins", "ties", "losses"}`` rows."""
    names = [m for m in (metrics or baseline) if m in baseline and m in model]
    return [{"metric": m, **paired_test(baseline[m], model[m], resamples, seed)} for m in names]


def worst_regressions(queries: Sequence[str], baseline: Sequence[float], model: Sequence[float], n: int = 3) -> list:
    """The ``n`` queries ``model`` loses most on, as ``{"query", "baseline", "model"}``, worst first.

    >>> worst_regressions(["a", "b", "c"], [1.0, 0.5, 0.2], [0.5, 0.5, 1.0], n=2)
    [{'query': 'a', 'baseline': 1.0, 'model': 0.5}]
    """
    order = sorted(range(len(queries)), key=lambda i: model[i] - baseline[i])
    return [{"query": queries[i], "baseline": round(baseline[i], 4), "model": round(model[i], 4)}
            for i in order[:n] if model[i] < baseline[i]]


def headline(metrics: Sequence[str]) -> Optional[str]:
    """The metric a comparison's regressions are shown for: the deepest MRR@k, else NDCG@k, else the first.

    >>> headline(["rerank_map", "rerank_mrr@1", "rerank_mrr@10", "rerank_ndcg@10"])
    'rerank_mrr@10'
    """
    for kind in ("mrr@", "ndcg@"):
        found = [m for m in metrics if kind in m]
        if found:
            return max(found, key=lambda m: int(m.rsplit("@", 1)[1]))
    return next(iter(metrics), None)


def format_comparisons(rows: Sequence[dict]) -> str:
    """Markdown table of comparison rows (each with ``baseline`` and ``model`` names).

    >>> print(format_comparisons([{"baseline": "before", "model": "after", "metric": "mrr@10", "delta": 0.02,
    ...       "ci95": [0.01, 0.03], "p_value": 0.001, "wins": 5, "ties": 3, "losses": 1}]))
    | model vs baseline | metric | delta | 95% interval | p | wins / ties / losses |
    |---|---|---|---|---|---|
    | after vs before | mrr@10 | +0.0200 | [+0.0100, +0.0300] | 0.0010 | 5 / 3 / 1 |
    """
    lines = ["| model vs baseline | metric | delta | 95% interval | p | wins / ties / losses |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["ci95"]
        lines.append(f"| {r['model']} vs {r['baseline']} | {r['metric']} | {r['delta']:+.4f} | [{lo:+.4f}, {hi:+.4f}] "
                     f"| {r['p_value']:.4f} | {r['wins']} / {r['ties']} / {r['losses']} |")
    return "\n".join(lines)
