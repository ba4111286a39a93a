"""BaseRanker: the rerank logic every ranking model shares; subclasses implement compute_score."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Optional, Sequence

LONG_DOC_STRATEGIES = ("truncate", "max_chunk")


def check_texts(texts, what: str = "docs") -> list:
    """``texts`` as a list of strings; a lone string or a non-string item is a TypeError naming it.

    >>> check_texts(("a", "b"))
    ['a', 'b']
    >>> check_texts("one doc")
    Traceback (most recent call last):
    ...
    TypeError: docs must be a list of strings, got one str: pass ["one doc"] for a single one
    """
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a list of strings, got one str: pass [{texts[:40]!r}] for a single one"
                        .replace("'", '"'))
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__}") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] must be a string, got {type(text).__name__}: {text!r}"[:200])
    return texts


def check_pairs(pairs) -> list:
    """``pairs`` as a list of (query, document) string tuples; TypeError naming the first bad one.

    >>> check_pairs([("q", 123)])
    Traceback (most recent call last):
    ...
    TypeError: pairs[0] must be a (query, document) pair of strings, got ('q', 123)
    """
    if isinstance(pairs, (str, tuple)) and (isinstance(pairs, str) or len(pairs) == 2 and isinstance(pairs[0], str)):
        raise TypeError("pairs must be a list of (query, document) pairs: pass [(query, document)] for one")
    out = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
            raise TypeError(f"pairs[{i}] must be a (query, document) pair of strings, got {pair!r}"[:200])
        out.append(tuple(pair))
    return out


def check_top_k(top_k) -> None:
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be None (all) or an integer >= 1, got {top_k!r}")


@dataclass
class RankedDoc:
    """One document of a ranking: its index in the input, text, score and 0-based rank."""

    id: int
    text: str
    score: float
    rank: int


class RankedResults(list):
    """A list of :class:`RankedDoc`, best first, with the query; ``ids``, ``texts``, ``scores``."""

    def __init__(self, query: str, docs: Sequence[RankedDoc] = ()):
        super().__init__(docs)
        self.query = query

    @property
    def ids(self) -> list:
        return [d.id for d in self]

    @property
    def texts(self) -> list:
        return [d.text for d in self]

    @property
    def scores(self) -> list:
        return [d.score for d in self]

    def to_dict(self) -> dict:
        return {"query": self.query, "ranked": [vars(d) for d in self]}


class BaseRanker(abc.ABC):
    """Score (query, document) pairs and rerank documents.

    Subclasses implement :meth:`compute_score`; to score long documents by windows they also set
    ``self.tokenizer`` (a fast tokenizer) and ``self.max_length``, and override
    :meth:`doc_token_budget` when their input is not a cross-encoder's ``[CLS] q [SEP] d [SEP]``.

    Example:
        >>> class Overlap(BaseRanker):
        ...     def compute_score(self, pairs, normalize=False):
        ...         return [float(len(set(q.split()) & set(d.split()))) for q, d in pairs]
        >>> Overlap().rerank("red apple", ["green pear", "red apple", "red car"]).ids
        [1, 2, 0]
    """

    tokenizer = None
    max_length: Optional[int] = None

    @abc.abstractmethod
    def compute_score(self, pairs: Sequence, normalize: bool = False) -> list:
        """Scores of ``(query, document)`` pairs, in input order (sigmoid when ``normalize``)."""

    def rerank(self, query: str, docs: Sequence[str], top_k: Optional[int] = None, long_doc: str = "truncate",
               chunk_overlap: int = 32, normalize: bool = False) -> RankedResults:
        """Rank ``docs`` for ``query``; the result keeps each document's input index.

        Args:
            top_k: keep the best k (all when None).
            long_doc: ``truncate`` (the model's max length cuts the document) or ``max_chunk``
                (token windows of the document are scored, a document scores its best window).
            chunk_overlap: tokens shared by consecutive windows under ``max_chunk``.
            normalize: sigmoid scores.

        Each distinct document text is scored once (duplicates share the score).
        """
        if long_doc not in LONG_DOC_STRATEGIES:
            raise ValueError(f"long_doc='{long_doc}' is not valid; choose one of: {', '.join(LONG_DOC_STRATEGIES)}")
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        check_top_k(top_k)
        docs = check_texts(docs)
        if not docs:
            return RankedResults(query)
        unique = list(dict.fromkeys(docs))
        if long_doc == "max_chunk":
            unique_scores = self._max_chunk_scores(query, unique, chunk_overlap, normalize)
        else:
            unique_scores = self.compute_score([(query, d) for d in unique], normalize=normalize)
        score_of = dict(zip(unique, unique_scores))
        scores = [float(score_of[d]) for d in docs]
        order = sorted(range(len(docs)), key=lambda i: -scores[i])[: top_k if top_k is not None else len(docs)]
        return RankedResults(query, [RankedDoc(i, docs[i], scores[i], r) for r, i in enumerate(order)])

    def doc_token_budget(self, query: str) -> int:
        """Document tokens that fit beside ``query`` within ``max_length`` (window size under ``max_chunk``).

        This default counts the query and the special tokens of a tokenizer's pair input.
        """
        return self.max_length - len(self.tokenizer(query, add_special_tokens=False)["input_ids"]) \
            - self.tokenizer.num_special_tokens_to_add(pair=True)

    def _max_chunk_scores(self, query: str, docs: list, overlap: int, normalize: bool) -> list:
        if self.tokenizer is None or not self.max_length:
            raise ValueError(f"{type(self).__name__} cannot split documents: it has no tokenizer/max_length")
        budget = self.doc_token_budget(query)
        if budget <= overlap:
            raise ValueError(f"the query leaves {budget} tokens of max_length {self.max_length}: too few for windows "
                             f"with chunk_overlap {overlap}")
        pairs, owner = [], []
        for i, doc in enumerate(docs):
            for chunk in token_windows(self.tokenizer, doc, budget, overlap):
                pairs.append((query, chunk))
                owner.append(i)
        best = [float("-inf")] * len(docs)
        for i, s in zip(owner, self.compute_score(pairs, normalize=normalize)):
            best[i] = max(best[i], s)
        return best


def token_windows(tokenizer, text: str, size: int, overlap: int) -> list:
    """Split ``text`` into windows of at most ``size`` tokens, ``overlap`` tokens shared, as
    substrings of the original text (character offsets of a fast tokenizer).
    """
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) <= size:
        return [text]
    step = size - overlap
    windows = []
    for start in range(0, len(offsets), step):
        window = offsets[start : start + size]
        windows.append(text[window[0][0] : window[-1][1]])
        if start + size >= len(offsets):
            break
    return windows
