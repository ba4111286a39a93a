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


# loss -> (what its targets need, test on one group's labels: does this group teach it anything)
NEEDS = {
    "bce": ("labels in [0, 1] (set data.label_range: [min, max] to scale others)", None),
    "mse": ("numbers (teacher scores when the data has them)", lambda g: True),
    "ranknet": ("two documents with different labels in a group", lambda g: max(g) > min(g)),
    "listwise_ce": ("a document with a label > 0 in each group", lambda g: max(g) > 0),
    "listnet": ("two documents with different labels in a group", lambda g: max(g) > min(g)),
    "listmle": ("two documents with different labels in a group", lambda g: max(g) > min(g)),
    "lambda": ("labels >= 0, two of them different in a group", lambda g: min(g) >= 0 and max(g) > min(g)),
    "kl_distill": ("teacher scores (pos_scores / neg_scores, or score in hits)", lambda g: True),
    "infonce": ("a document with a label > 0 (the positive) in each record", lambda g: max(g) > 0),
}


def check_labels(groups: Sequence[Sequence[float]], where: Sequence[str], loss_name: str, fits: Sequence[str],
                 group_size: int = 1, scaled: bool = False) -> list:
    """Refuse a loss that would learn nothing from these labels (as training sees them: after
    ``data.label_range`` when ``scaled``).

    Args:
        groups: each record's labels (its documents; a query's group is drawn from them).
        where: each record's ``file:line``, for the message.
        loss_name: ``loss.name`` (parts joined by ``+``).
        fits: the losses the kind offers, to name those that fit.
        group_size: documents per group; a record with nothing labelled below its positive is
            grouped with random documents of other records, labelled 0.

    >>> check_labels([[-1, -2, -3]], ["f:1"], "listwise_ce", ["listwise_ce", "listnet"], 3)
    Traceback (most recent call last):
    ...
    rag_retrieval.errors.DataError: loss.name=listwise_ce: 'listwise_ce' needs a document with a label > 0 in each group, but the labels are rank (-3 to -1) and 1 of 1 records give it nothing to learn, e.g. f:1; losses that fit: listnet; or set data.label_range: [min, max] to map the labels to [0, 1]

    Returns:
        Warnings (records some loss part learns nothing from, when others are fine).

    Raises:
        DataError: a part of the loss is constant (or undefined) on every record, or bce meets
            labels outside [0, 1]; the message names the loss, what it needs, the first
            offending lines and the losses that fit these labels.
    """
    grouped = [list(g) + ([filler_label(g)] if group_size > 1 and g and max(g) == min(g) else []) for g in groups]
    kind = label_kind(v for g in groups for v in g) if groups else "binary"
    warnings = []
    for part in loss_name.split("+"):
        if part not in NEEDS:
            continue
        need, useful = NEEDS[part]
        bad = [i for i, g in enumerate(grouped) if not _fits(part, useful, g)]
        if not bad:
            continue
        if part == "bce" or len(bad) == len(grouped):
            good = [p for p in fits if p in NEEDS and p != "kl_distill"  # it needs teacher scores, not labels
                    and all(_fits(p, NEEDS[p][1], g) for g in grouped)]
            shown = ", ".join(where[i] for i in bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
            hint = f"; losses that fit: {', '.join(good)}" if good else ""
            scale_hint = "; or set data.label_range: [min, max] to map the labels to [0, 1]" if kind in (
                "graded", "rank", "real") and not scaled else ""
            raise DataError(f"loss.name={loss_name}: '{part}' needs {need}, but the labels are {kind} "
                            f"({_range(groups)}) and {len(bad)} of {len(groups)} records give it nothing to learn, "
                            f"e.g. {shown}{hint}{scale_hint}")
        warnings.append(f"loss '{part}' learns nothing from {len(bad)} of {len(groups)} records (they lack {need}), "
                        f"e.g. {where[bad[0]]}")
    return warnings


def _fits(part: str, useful, group: Sequence[float]) -> bool:
    if part == "bce":
        return all(0 <= v <= 1 for v in group)
    return not group or useful(group)


def _range(groups) -> str:
    values = [v for g in groups for v in g]
    return f"{min(values):g} to {max(values):g}" if values else "none"
