"""What labels mean, and whether a loss can learn from them, decided over the whole file before a
model loads.

Four kinds of labels are found in the files users train on:

- ``binary``: 0 and 1 (pos_neg files, most hits files);
- ``graded``: integers 0..N, higher is better (RAG-Retrieval's pointwise 0/1/2, TREC grades);
- ``continuous``: numbers in [0, 1] (soft labels, scaled grades);
- ``rank``: integers <= 0 with at least one below 0, higher is better (RAG-Retrieval's listwise
  files label the best document -1, the next -2, ...).

``data.label_range: [min, max]`` maps labels linearly to [0, 1] (RAG-Retrieval's
``min_label`` / ``max_label``), so graded or rank labels can train a pointwise loss. Each loss
says what its targets need (:data:`NEEDS`); :func:`check_labels` refuses a loss that would be
constant on the data, naming the first offending lines and the losses that fit.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from ..errors import DataError
from .datasets import filler_label

LABEL_KINDS = ("binary", "graded", "continuous", "rank", "real")


def label_kind(labels: Iterable[float]) -> str:
    """The kind of a file's labels.

    >>> label_kind([1, 0, 0]), label_kind([2, 1, 0]), label_kind([0.3, 1.0]), label_kind([-1, -2, -20])
    ('binary', 'graded', 'continuous', 'rank')
    >>> label_kind([-0.5, 3.2])
    'real'
    """
    values = set(float(v) for v in labels)
    integral = all(v.is_integer() for v in values)
    if values <= {0.0, 1.0}:
        return "binary"
    if integral and min(values) >= 0:
        return "graded"
    if min(values) >= 0 and max(values) <= 1:
        return "continuous"
    if integral and max(values) <= 0:
        return "rank"
    return "real"


def scale(label: float, label_range: Optional[Sequence[float]]) -> float:
    """``label`` mapped linearly from ``label_range`` [min, max] to [0, 1] (unchanged when None).

    >>> scale(2, [0, 2]), scale(-1, [-20, -1]), scale(1, None)
    (1.0, 1.0, 1)
    """
    if label_range is None:
        return label
    low, high = label_range
    return (float(label) - low) / (high - low)


# loss -> (what its targets need, test on one group's labels as training sees them: does it teach anything)
NEEDS = {
    "bce": ("labels in [0, 1] (set data.label_range: [min, max] to scale others), not all equal",
            lambda g: all(0 <= v <= 1 for v in g)),
    "mse": ("labels that are not all equal (or teacher scores)", lambda g: True),
    "ranknet": ("two documents with different labels in a group", lambda g: max(g) > min(g)),
    "listwise_ce": ("a document with a label > 0 in each group", lambda g: max(g) > 0),
    "listnet": ("two documents with different labels in a group", lambda g: max(g) > min(g)),
    "listmle": ("two documents with different labels in a group", lambda g: max(g) > min(g)),
    "lambda": ("labels >= 0, two of them different in a group", lambda g: min(g) >= 0 and max(g) > min(g)),
    "kl_distill": ("teacher scores (pos_scores / neg_scores, or score in hits)", lambda g: True),
    "infonce": ("a positive labelled above the record's other documents", lambda g: max(g) > min(g)),
}
POINTWISE = ("bce", "mse")  # targets are each document's own label: constant when every label is the same


def training_group(labels: Sequence[float], group_size: int) -> list:
    """The labels of a record as its training group sees them: the top-labelled document alone for
    groups of one; else its labels, with a filler (:func:`~.datasets.filler_label`) when nothing is
    labelled below its positive (random documents of other records fill the group).

    >>> training_group([1, 0, 0], 1), training_group([1.0], 4), training_group([-1, -2], 2)
    ([1], [1.0, 0.0], [-1, -2])
    """
    if group_size == 1:
        return [max(labels)]
    labels = list(labels)
    return labels + ([filler_label(labels)] if labels and max(labels) == min(labels) else [])


def check_labels(groups: Iterable[Sequence[float]], where, loss_name: str, fits: Sequence[str],
                 group_size: int = 1, scaled: bool = False, has_scores: bool = False) -> list:
    """Refuse a loss that would learn nothing from these labels (as training sees them: after
    ``data.label_range`` when ``scaled``; groups by :func:`training_group`).

    Args:
        groups: each record's labels, in order (streamed: read once).
        where: record index -> its ``file:line``, for the message (a list works).
        loss_name: ``loss.name`` (parts joined by ``+``).
        fits: the losses the kind offers, to name those that fit.
        has_scores: the records carry teacher scores (mse and kl_distill train on those).

    Returns:
        Warnings (records some loss part learns nothing from, when others are fine).

    Raises:
        DataError: a part of the loss is constant (or undefined) on every record, bce meets labels
            outside [0, 1], or a pointwise loss meets one label value only; the message names the
            loss, what it needs, the first offending lines and the losses that fit these labels.

    >>> check_labels([[-1, -2, -3]], ["f:1"], "listwise_ce", ["listwise_ce", "listnet"], 3)
    Traceback (most recent call last):
    ...
    rag_retrieval.errors.DataError: loss.name=listwise_ce: 'listwise_ce' needs a document with a label > 0 in each group, but the labels are rank (-3 to -1) and 1 of 1 records give it nothing to learn, e.g. f:1; losses that fit: listnet; or set data.label_range: [min, max] to map the labels to [0, 1]
    """
    parts = [p for p in loss_name.split("+") if p in NEEDS]
    candidates = [p for p in fits if p in NEEDS and p != "kl_distill"]  # it needs teacher scores, not labels
    bad = {p: [] for p in set(parts) | set(candidates)}  # first offending record indices
    n_bad = dict.fromkeys(bad, 0)
    values, trained, n = set(), set(), 0  # every label; the labels pointwise targets see
    for i, labels in enumerate(groups):
        n += 1
        group = training_group(labels, group_size)
        values.update(float(v) for v in labels)
        trained.update(float(v) for v in group if group_size > 1 or v == group[0])
        for p in bad:
            if group and not NEEDS[p][1](group):
                n_bad[p] += 1
                if len(bad[p]) < 5:
                    bad[p].append(i)
    kind = label_kind(values) if values else "binary"
    constant = len(trained) < 2 and not has_scores
    good = [p for p in candidates if not n_bad[p] and not (p in POINTWISE and constant)]
    warnings = []
    for part in parts:
        if part == "kl_distill" or (part == "mse" and has_scores):
            continue
        need = NEEDS[part][0]
        whole = part in POINTWISE and constant
        if not n_bad[part] and not whole:
            continue
        if whole or part == "bce" or n_bad[part] == n:
            first = bad[part] or list(range(min(n, 3)))
            shown = ", ".join(where[i] for i in first)
            count = n if whole else n_bad[part]
            more = f" (and {count - len(first)} more)" if count > len(first) else ""
            hint = f"; losses that fit: {', '.join(good)}" if good else ""
            scale_hint = "; or set data.label_range: [min, max] to map the labels to [0, 1]" if kind in (
                "graded", "rank", "real") and not scaled else ""
            raise DataError(f"loss.name={loss_name}: '{part}' needs {need}, but the labels are {kind} "
                            f"({_range(values)}) and {count} of {n} records give it nothing to learn, "
                            f"e.g. {shown}{more}{hint}{scale_hint}")
        warnings.append(f"loss '{part}' learns nothing from {n_bad[part]} of {n} records (they lack {need}), "
                        f"e.g. {where[bad[part][0]]}")
    return warnings


def _range(values) -> str:
    return f"{min(values):g} to {max(values):g}" if values else "none"
