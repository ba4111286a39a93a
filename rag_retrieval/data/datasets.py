"""Training datasets over the Arrow examples of :mod:`rag_retrieval.data.io`.

The dataset owns the order of an epoch (the Trainer's sampler is sequential, see
``RetrievalTrainer``): at ``set_epoch`` it shuffles from ``seed + epoch`` and lays examples out
so that no global batch holds the same positive text twice, which would make an in-batch
"negative" identical to the positive. Groups (1 positive + G-1 negatives) are drawn per epoch
from the same seed, so a resumed run sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

logger = logging.getLogger(__name__)


def _flat_column(table, name: str) -> tuple:
    """A list column of an Arrow table as (flat values, offsets) numpy arrays."""
    col = table.column(name).combine_chunks()
    return col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy()


WAIT_SCAN = 64  # waiting items tried per placement: bounds the work when one text is many queries' positive
SWAP_TRIES = 256  # earlier positions tried to place a leftover by a swap


def no_duplicate_order(order: np.ndarray, keys: np.ndarray, batch_size: int, texts=None) -> np.ndarray:
    """Reorder ``order`` so that no chunk of ``batch_size`` holds an item's positive (``keys[i]``)
    twice, nor as one of another item's texts (``texts(i)``: the keys of every document of item
    i, whose negatives are drawn from them), so no document in a batch is a positive of one query
    and a negative of another.

    Greedy and stable: an item that clashes with the current chunk waits for a later one (the
    first :data:`WAIT_SCAN` waiting items are tried before each new one). What is left at the end
    is placed by swapping with an item of an earlier chunk where that fits (:data:`SWAP_TRIES`
    positions), else as it is: a text that is the positive of more than one query in
    ``batch_size`` cannot be kept apart. Linear in the number of items.

    >>> no_duplicate_order(np.arange(6), np.array([7, 7, 8, 9, 7, 10]), 2).tolist()
    [0, 2, 1, 3, 4, 5]
    >>> others = {0: [1, 5], 1: [2, 1], 2: [3, 6], 3: [4, 7]}  # item 1's document 1 is item 0's positive
    >>> no_duplicate_order(np.arange(4), np.array([1, 2, 3, 4]), 2, lambda i: others[i]).tolist()
    [0, 2, 1, 3]
    """
    if batch_size <= 1:
        return order
    cache: dict = {}

    def texts_of(i) -> frozenset:
        if i not in cache:
            cache[i] = frozenset(texts(i)) if texts is not None else frozenset((keys[i],))
        return cache[i]

    out, waiting = [], []
    positives: set = set()
    seen: set = set()  # every text of the chunk's items

    def clashes(i) -> bool:
        return keys[i] in positives or keys[i] in seen or not positives.isdisjoint(texts_of(i))

    def put(i):
        out.append(i)
        positives.add(keys[i])
        seen.update(texts_of(i))
        if len(out) % batch_size == 0:
            positives.clear()
            seen.clear()

    def place_waiting() -> bool:
        for j, w in enumerate(waiting[:WAIT_SCAN]):  # earlier leftovers first, so nothing waits for long
            if not clashes(w):
                put(waiting.pop(j))
                return True
        return False

    for i in order:
        place_waiting()
        if clashes(i):
            waiting.append(i)
        else:
            put(i)
    hopeless: set = set()  # positives no swap found room for: not tried again
    while waiting:
        if place_waiting():
            continue
        w = waiting.pop(0)
        k = None if keys[w] in hopeless else _swap_partner(out, w, batch_size, keys, texts_of)
        if k is None:
            hopeless.add(keys[w])
        else:  # w takes the place of an item of an earlier chunk, which moves to this one
            out[k], w = w, out[k]
        put(w)
    return np.asarray(out, dtype=np.int64)


def _fits_together(items, keys, texts_of) -> bool:
    """No item's positive is another item's positive or text."""
    return not any(a != b and (keys[a] == keys[b] or keys[a] in texts_of(b)) for a in items for b in items)


def _swap_partner(out: list, w: int, batch_size: int, keys, texts_of):
    """A position k of a full earlier chunk (the first :data:`SWAP_TRIES`) whose item can change
    places with ``w``: w fits in k's chunk and that item in the open last chunk. None when none."""
    open_start = len(out) - len(out) % batch_size
    current = out[open_start:]
    for k in range(min(open_start, SWAP_TRIES)):
        start = k - k % batch_size
        chunk = out[start : start + batch_size]
        if _fits_together([w if i == out[k] else i for i in chunk], keys, texts_of) and \
                _fits_together(current + [out[k]], keys, texts_of):
            return k
    return None


def filler_label(labels) -> float:
    """The label of a random document of another record that fills a group: 0, or below every
    label of the record when its labels are ranks (negative).

    >>> filler_label([1.0]), filler_label([-1.0, -1.0])
    (0.0, -2.0)
    """
    low = float(min(labels))
    return 0.0 if low >= 0 else low - 1.0


class GroupedDataset(torch.utils.data.Dataset):
    """Each item: one query, 1 positive + ``group_size - 1`` negatives, their labels, teacher scores if any.

    Args:
        examples: ``datasets.Dataset`` from :func:`rag_retrieval.data.io.load_examples`.
        group_size: passages per query (G).
        seed: base seed; epoch ``e`` uses ``(seed, e)``.
        global_batch_size: queries per optimizer micro-step over all processes; chunks of this
            size never repeat a positive text. 1 disables the check.
        shuffle: shuffle per epoch (True for training).

    The positive is one of the top-labelled documents (binary, graded and rank labels alike);
    negatives are the documents labelled below it; when there are fewer than G-1, they are drawn
    with replacement; when there are none, random documents of other examples are used
    (:func:`filler_label`).

    Example:
        >>> from rag_retrieval.data.io import load_examples
        >>> ds = GroupedDataset(load_examples("data/example/train.jsonl", "pos_neg"), group_size=4, seed=1)
        >>> item = ds[0]
        >>> len(item["passages"]), item["labels"][0]
        (4, 1.0)
    """

    def __init__(self, examples, group_size: int, seed: int = 42, global_batch_size: int = 1, shuffle: bool = True):
        self.examples = examples
        self.group_size = group_size
        self.seed = seed
        self.global_batch_size = global_batch_size
        self.shuffle = shuffle
        table = examples.data.table if hasattr(examples.data, "table") else examples.data
        self._labels, self._offsets = _flat_column(table, "labels")
        self._hashes, _ = _flat_column(table, "doc_hashes")
        self.has_scores = examples[0]["scores"] is not None
        self.epoch = -1
        self.set_epoch(0)

    def __len__(self) -> int:
        return len(self.examples)

    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, *keys])

    def set_epoch(self, epoch: int) -> None:
        """Choose this epoch's order and positives (deterministic in seed and epoch)."""
        epoch = int(epoch)
        if epoch == self.epoch:
            return
        self.epoch = epoch
        n = len(self.examples)
        rng = self._rng()
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        starts, ends = self._offsets[:-1], self._offsets[1:]
        self._positive = np.empty(n, dtype=np.int64)  # flat index of each example's positive
        draws = rng.random(n)
        for i in range(n):
            labels = self._labels[starts[i] : ends[i]]
            best = labels.max()
            candidates = np.flatnonzero(labels == best)  # a top-labelled document (rank labels: the -1)
            self._positive[i] = starts[i] + candidates[int(draws[i] * len(candidates))]
        hashes, offsets = self._hashes, self._offsets
        self._order = no_duplicate_order(order, hashes[self._positive], self.global_batch_size,
                                         lambda i: hashes[offsets[i] : offsets[i + 1]].tolist())

    def __getitem__(self, idx: int) -> dict:
        i = int(self._order[idx])
        row = self.examples[i]
        start = int(self._offsets[i])
        pos = int(self._positive[i]) - start
        labels = np.asarray(row["labels"], dtype=np.float32)
        rng = self._rng(i)
        neg_pool = np.flatnonzero(labels < labels[pos])
        k = self.group_size - 1
        chosen = [pos]
        if k > 0 and len(neg_pool) > 0:
            chosen += rng.choice(neg_pool, size=k, replace=len(neg_pool) < k).tolist()
        passages = [row["docs"][j] for j in chosen]
        item_labels = [float(labels[j]) for j in chosen]
        if k > 0 and len(neg_pool) == 0:  # no negatives of its own: random documents of other examples
            filler = filler_label(labels)
            for _ in range(k):
                other = int(rng.integers(len(self.examples) - 1)) if len(self.examples) > 1 else 0
                other += other >= i and len(self.examples) > 1
                docs = self.examples[other]["docs"]
                passages.append(docs[int(rng.integers(len(docs)))])
                item_labels.append(filler)
        item = {"query": row["query"], "passages": passages, "prompt": row["prompt"], "labels": item_labels}
        if self.has_scores:  # teacher scores exist only for the example's own documents
            item["teacher_scores"] = [row["scores"][j] for j in chosen] if len(chosen) == len(passages) else None
        return item


def build_grouped_dataset(examples, data_args, train_args) -> GroupedDataset:
    """A :class:`GroupedDataset` sized for the run's global batch (devices x per-device batch)."""
    seed = data_args.dataloader_seed if data_args.dataloader_seed is not None else train_args.seed
    global_batch = train_args.per_device_train_batch_size * max(1, train_args.world_size)
    return GroupedDataset(examples, data_args.group_size, seed=seed, global_batch_size=global_batch)


def teacher_scores_tensor(items: list) -> Optional[torch.Tensor]:
    """Stack per-item teacher scores into (B, G), or None when any item lacks them."""
    scores = [it.get("teacher_scores") for it in items]
    if any(s is None for s in scores):
        return None
    return torch.tensor(scores, dtype=torch.float32)  # (B, G)
