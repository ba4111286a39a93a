"""The ``data:``, ``loss:`` and ``eval:`` sections, and the Trainer defaults of ``train:``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

from ..errors import ConfigError

DATA_FORMATS = ("pos_neg", "hits", "pointwise")
NEGATIVE_SOURCES = ("file", "bm25")  # data.negatives (rag_retrieval.data.negatives)


def check_choice(section: str, key: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``, listing them."""
    if value not in choices:
        raise ConfigError(f"{section}.{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


def check_label_range(section: str, label_range) -> None:
    if label_range is not None and (len(label_range) != 2 or not label_range[0] < label_range[1]):
        raise ConfigError(f"{section}.label_range must be [min, max] with min < max, e.g. [0, 2] or [-20, -1]; "
                          f"got {label_range}")


@dataclass
class DataArgs:
    """``data:`` section: where the examples are, their format, and how they are grouped."""

    train_path: Union[str, list[str], None] = None  # .jsonl (plain or compressed), a folder of shards, a datasets
    # folder, hf://datasets/<org>/<name>[:split]; or a list of them
    format: str = "pos_neg"
    columns: Optional[dict[str, str]] = None  # our key -> the file's, e.g. {query: question, pos: answer}
    label_range: Optional[list[float]] = None  # [min, max]: labels mapped linearly to [0, 1] (RAG-Retrieval's min/max_label)
    group_size: int = 8  # 1 positive + group_size-1 negatives per query
    query_max_len: int = 64
    passage_max_len: int = 256
    length_buckets: int = 1  # split each batch into N sub-batches of similar length (less padding, same loss)
    skip_bad_lines: bool = False  # report and skip malformed records instead of failing
    max_examples: Optional[int] = None  # use only the first N records (quick runs)
    dataloader_seed: Optional[int] = None  # defaults to train.seed
    negatives: str = "file"  # file: the records' own; bm25: mined again from all the training documents when read
    false_negative_margin: Optional[float] = 0.0  # bm25: drop candidates scoring >= the weakest positive less this

    def __post_init__(self):  # types and ranges: config.checks
        check_choice("data", "format", self.format, DATA_FORMATS)
        check_choice("data", "negatives", self.negatives, NEGATIVE_SOURCES)
        check_label_range("data", self.label_range)

    @property
    def train_files(self) -> list:
        if self.train_path is None:
            return []
        return [self.train_path] if isinstance(self.train_path, str) else list(self.train_path)


@dataclass
class LossArgs:
    """``loss:`` section: what to optimise."""

    name: Optional[str] = None  # one loss, or several joined with '+' (summed, each logged); None: the kind's default
    temperature: Optional[float] = None  # student score temperature; None: 0.02 (embedding), 1.0 (rerankers)
    cross_device_negatives: bool = True  # gather passages from every process as extra negatives
    in_batch_negatives: bool = True  # False: each query sees only its own group
    matryoshka_dims: Optional[list[int]] = None  # e.g. [384, 256, 128]; None = no Matryoshka
    matryoshka_weights: Optional[list[float]] = None  # one per dim; default all 1
    teacher_temperature: float = 1.0  # teacher scores are divided by this before the softmax
    kl_weight: float = 1.0  # weight of kl_distill in infonce+kl_distill (and of kl in PE-Rank's sum)
    weights: Optional[dict[str, float]] = None  # PE-Rank: a weight per part, e.g. {contextual_listmle: 1.0, kl: 0.2}

    def __post_init__(self):  # types and ranges: config.checks
        if self.matryoshka_weights is not None:
            if not self.matryoshka_dims or len(self.matryoshka_weights) != len(self.matryoshka_dims):
                raise ConfigError("loss.matryoshka_weights needs one weight per entry of loss.matryoshka_dims")
        if self.matryoshka_dims is not None and not self.matryoshka_dims:
            raise ConfigError("loss.matryoshka_dims is empty: give sizes such as [384, 128], or null for none")

    def check_names(self, choices: Sequence[str]) -> None:
        """Every ``+``-joined part of ``name`` must be one of the kind's losses."""
        if any(part not in choices for part in self.name.split("+")):
            raise ConfigError(f"loss.name={self.name!r} is not valid here; choose one of: "
                              f"{', '.join(choices)} (or several joined with '+')")

    @property
    def needs_teacher_scores(self) -> bool:
        return "kl_distill" in (self.name or "")


@dataclass
class EvalArgs:
    """``eval:`` section: ranking metrics during and after training (see rag_retrieval.eval)."""

    rerank_path: Optional[str] = None  # rank each query's positives among its candidates (any input of data.train_path)
    format: str = "pos_neg"  # of rerank_path: pos_neg, hits (graded labels: graded NDCG) or pointwise (grouped by query)
    columns: Optional[dict[str, str]] = None  # of rerank_path: our key -> the file's
    label_range: Optional[list[float]] = None  # of rerank_path: [min, max] mapped to [0, 1] (rank labels: [-N, -1])
    beir_path: Optional[str] = None  # a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): retrieval eval
    beir_split: str = "test"
    corpus_path: Optional[str] = None  # retrieval eval: {"id","text"} JSONL
    queries_path: Optional[str] = None  # retrieval eval: {"qid","query","pos_ids"} JSONL
    max_queries: Optional[int] = None  # first N queries only
    k_values: list[int] = field(default_factory=lambda: [1, 5, 10, 100])
    batch_size: int = 128
    max_length: Optional[int] = None  # truncation length for evaluation; None: the model's (data.*_max_len)
    before_training: bool = True  # evaluate the starting model too, and print a before/after table
    bf16: bool = False  # score under bf16 autocast (LLM rerankers on CPU with bf16 units: ~3x faster)

    def __post_init__(self):  # types and ranges: config.checks
        if not self.k_values:
            raise ConfigError("eval.k_values is empty: give cutoffs such as [1, 10]")
        check_choice("eval", "format", self.format, DATA_FORMATS)
        check_label_range("eval", self.label_range)
        if (self.corpus_path is None) != (self.queries_path is None):
            raise ConfigError("eval.corpus_path and eval.queries_path go together (retrieval evaluation)")

    @property
    def enabled(self) -> bool:
        return self.rerank_path is not None or self.corpus_path is not None or self.beir_path is not None


# The Trainer's own defaults that make no sense for retrieval training are changed here, once.
TRAIN_DEFAULTS = {
    "output_dir": "outputs/run",
    "remove_unused_columns": False,  # our collators own the columns
    "report_to": "none",
    "dataloader_drop_last": True,  # in-batch negatives and all-gather want equal batches
    "logging_steps": 10,
}
