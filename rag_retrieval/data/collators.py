"""Collators own tokenisation, truncation and padding; datasets hand them raw text."""

from __future__ import annotations

from dataclasses import dataclass

from ..utils.batching import split_by_length
from .datasets import teacher_scores_tensor


@dataclass
class EmbeddingCollator:
    """Batch grouped items for a bi-encoder: queries and passages tokenised apart.

    Returns ``{"features": {"query": ..., "passage": ...}, "targets": {"teacher_scores": (B, G)?}}``;
    passages are flattened query-major, (B*G) rows. A record's ``prompt`` replaces the
    query instruction for that query. With ``length_buckets > 1`` queries and passages are each
    split into that many sub-batches of similar length (:func:`split_by_length`): the same vectors
    and loss, fewer pad tokens.
    """

    tokenizer: object
    query_max_len: int = 64
    passage_max_len: int = 256
    query_instruction: str = ""
    passage_instruction: str = ""
    pad_to_multiple_of: int | None = None
    length_buckets: int = 1

    def _tokenize(self, texts, max_length):
        features = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_length,
            pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt",
        )
        return split_by_length(features, self.length_buckets) if self.length_buckets > 1 else features

    def __call__(self, items: list) -> dict:
        queries = [(it.get("prompt") if it.get("prompt") is not None else self.query_instruction) + it["query"]
                   for it in items]
        passages = [self.passage_instruction + p for it in items for p in it["passages"]]  # (B*G,)
        batch = {
            "features": {
                "query": self._tokenize(queries, self.query_max_len),
                "passage": self._tokenize(passages, self.passage_max_len),
            },
            "targets": {},
        }
        scores = teacher_scores_tensor(items)
        if scores is not None:
            batch["targets"]["teacher_scores"] = scores  # (B, G)
        return batch


@dataclass
class PairCollator:
    """Batch grouped items for a pair scorer (cross-encoder): one row per (query, passage).

    ``tokenize(queries, docs)`` is the model's own, so training and inference build the same
    inputs. Returns ``{"features": tokenised (B*G) pairs, "targets": {"labels": (B, G),
    "teacher_scores": (B, G)?}}``. With ``length_buckets > 1`` the pairs are split into that many
    sub-batches of similar length (:func:`split_by_length`): same scores and loss, less padding.
    """

    tokenize: object
    pad_to_multiple_of: int | None = None
    length_buckets: int = 1

    def __call__(self, items: list) -> dict:
        import torch

        queries = [it["query"] for it in items for _ in it["passages"]]  # (B*G,)
        docs = [p for it in items for p in it["passages"]]
        targets = {"labels": torch.tensor([it["labels"] for it in items], dtype=torch.float32)}  # (B, G)
        scores = teacher_scores_tensor(items)
        if scores is not None:
            targets["teacher_scores"] = scores
        features = dict(self.tokenize(queries, docs, self.pad_to_multiple_of))
        return {"features": split_by_length(features, self.length_buckets), "targets": targets}


@dataclass
class ColBERTCollator:
    """Batch grouped items for a ColBERT model: queries and passages tokenised apart by the
    model's own ``tokenize_queries`` / ``tokenize_passages`` (markers, [MASK] augmentation, score
    masks), so training and inference build the same inputs. Same output layout as
    :class:`EmbeddingCollator`."""

    tokenize_queries: object
    tokenize_passages: object

    def __call__(self, items: list) -> dict:
        batch = {
            "features": {
                "query": self.tokenize_queries([it["query"] for it in items]),
                "passage": self.tokenize_passages([p for it in items for p in it["passages"]]),  # (B*G,)
            },
            "targets": {},
        }
        scores = teacher_scores_tensor(items)
        if scores is not None:
            batch["targets"]["teacher_scores"] = scores  # (B, G)
        return batch


@dataclass
class PERankCollator:
    """Batch grouped items for PE-Rank: raw texts (the model embeds them) and target permutations.

    The target ranks a query's passages by teacher score when the item has them, else by label.
    A step whose remaining passages all tie (e.g. the negatives after the positive, with 0/1 labels)
    has no right answer: ``step_mask`` leaves it out of the loss. Repeated passages of a group
    (negatives drawn with replacement) are kept once. The passages are shown to the model in a
    shuffled order, seeded by the item's text, so their position in the prompt tells nothing.
    Returns ``{"features": {"queries": [B], "passages": [B lists], "orders": (B, N), "step_mask":
    (B, N)}, "targets": {}}``; ``orders`` index the shown lists, padded past each list's end.
    """

    seed: int = 0

    def __call__(self, items: list) -> dict:
        import random

        import torch

        from .io import text_hash

        groups = []
        for it in items:
            scores = it.get("teacher_scores") or it["labels"]
            first = {}
            for i, p in enumerate(it["passages"]):
                first.setdefault(p, i)  # a repeated passage is kept once
            keep = sorted(first.values())
            groups.append((it["query"], [it["passages"][i] for i in keep], [scores[i] for i in keep]))
        n_max = max(len(passages) for _, passages, _ in groups)
        queries, shown, orders, masks = [], [], [], []
        for query, passages, key in groups:
            n = len(passages)
            target = sorted(range(n), key=lambda i: -key[i])  # stable: ties keep the group's order
            rng = random.Random(self.seed * 1_000_003 + text_hash(query + "\x00".join(passages)))
            perm = list(range(n))
            rng.shuffle(perm)  # shown[k] = passages[perm[k]]
            where = {original: k for k, original in enumerate(perm)}
            queries.append(query)
            shown.append([passages[i] for i in perm])
            orders.append([where[i] for i in target] + list(range(n, n_max)))
            masks.append([len({key[i] for i in target[t:]}) > 1 for t in range(n)] + [False] * (n_max - n))
        return {"features": {"queries": queries, "passages": shown, "orders": torch.tensor(orders),
                             "step_mask": torch.tensor(masks)}, "targets": {}}
