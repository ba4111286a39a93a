"""Cross-encoder reranker: one transformer reads (query, document) together and outputs a logit."""

from __future__ import annotations

from typing import Optional, Sequence

from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from .. import kinds
from ..utils.batching import merge_chunks
from .hub import resolve_model_path
from .packed import packed_logits
from .pair_scorer import PairScorer
from .split_cross_encoder import SplitCrossEncoder
from .weights import load_auto_model, load_kwargs, maybe_wrap_lora, read_settings, save_encoder, strip_prefix, write_settings

class CrossEncoder(PairScorer):
    """Score (query, document) pairs with ``AutoModelForSequenceClassification`` (num_labels=1).

    Checkpoints of bge-reranker, bce-reranker, gte-multilingual-reranker and the like load as
    they are; any encoder (e.g. MiniLM) gets a fresh one-logit head. Saved models load unchanged
    in ``sentence_transformers.CrossEncoder`` and FlagEmbedding's ``FlagReranker``.

    Args:
        model: the sequence-classification model (optionally wrapped by peft).
        tokenizer: its tokenizer.
        max_length: token limit of the pair; the document is truncated first.
        query_instruction / passage_instruction: text put before the query / the document.

    Example:
        >>> ce = CrossEncoder.from_pretrained("tiny-bert")
        >>> len(ce.compute_score([("q", "a doc"), ("q", "another doc")]))
        2
    """

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 512, query_instruction: str = "",
                 passage_instruction: str = ""):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.query_instruction = query_instruction
        self.passage_instruction = passage_instruction
        self.new_modules: tuple = ()  # modules the checkpoint did not hold (a new head): train.head_learning_rate

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, max_length: Optional[int] = None,
                        query_instruction: Optional[str] = None, passage_instruction: Optional[str] = None,
                        dtype: Optional[str] = None, attn_implementation: Optional[str] = None,
                        trust_remote_code: bool = False, lora: Optional[dict] = None,
                        config_overrides: Optional[dict] = None, trainable: bool = False,
                        separate_layers: Optional[int] = None, score_scale: Optional[float] = None,
                        joint_gate: Optional[bool] = None, joint_head: Optional[bool] = None) -> "CrossEncoder":
        """Load a checkpoint (a hub id, a folder, an alias, or a LoRA adapter folder of ours); a missing
        head is created (num_labels=1). ``separate_layers`` > 0 (or a model saved so) gives a
        :class:`~.split_cross_encoder.SplitCrossEncoder`, which starts from the bi-encoder it is made from."""
        path = resolve_model_path(model_name_or_path)
        saved = read_settings(path)
        if separate_layers or (separate_layers is None and saved.get("separate_layers")):
            return SplitCrossEncoder.from_pretrained(
                path, max_length, separate_layers, score_scale, query_instruction, passage_instruction, dtype,
                attn_implementation, trust_remote_code, lora, config_overrides, trainable, joint_gate, joint_head)
        if joint_gate or joint_head:
            raise ValueError(f"{'joint_gate' if joint_gate else 'joint_head'}=True needs a split cross-encoder: give "
                             f"separate_layers (1 to the model's layer count)")
        if saved.get("separate_layers"):
            raise ValueError(f"{model_name_or_path} is a split cross-encoder (separate_layers="
                             f"{saved['separate_layers']}): it has no classifier head to score with separate_layers=0")
        model, new_modules = load_auto_model(AutoModelForSequenceClassification, path, lambda base: load_kwargs(
            dtype, attn_implementation, trust_remote_code, base, config_overrides, num_labels=1), trainable=trainable)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model = maybe_wrap_lora(model, lora, task_type="SEQ_CLS")
        ce = cls(
            model,
            tokenizer,
            max_length=max_length or saved.get("max_length", 512),
            query_instruction=query_instruction if query_instruction is not None else saved.get("query_instruction", ""),
            passage_instruction=passage_instruction if passage_instruction is not None
            else saved.get("passage_instruction", ""),
        )
        ce.new_modules = new_modules
        return ce

    @classmethod
    def from_args(cls, section, data) -> "CrossEncoder":
        """Build for training from the ``model:`` section (:class:`~rag_retrieval.config.RerankerModelArgs`,
        whose fields are this class's ``from_pretrained`` keywords); pairs cut to ``data.passage_max_len``."""
        return cls.from_pretrained(**section.pretrained_kwargs(), max_length=data.passage_max_len, trainable=True)

    # ---- training ------------------------------------------------------------------------
    def tokenize(self, queries: Sequence[str], docs: Sequence[str], pad_to_multiple_of: Optional[int] = None,
                 padding: bool = True) -> dict:
        """Tokenise pairs as the model will see them (instructions, document truncated first).

        ``padding=False`` returns unpadded token lists (to sort by length and pad per batch later).
        """
        return self.tokenizer(
            [self.query_instruction + q for q in queries], [self.passage_instruction + d for d in docs],
            padding=padding, truncation="longest_first", max_length=self.max_length,
            pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt" if padding else None,
        )

    def forward(self, **features) -> dict:
        """Tokenised pairs (or length-bucketed sub-batches of them) -> ``{"scores": (N,)}`` logits."""
        return {"scores": merge_chunks(lambda **f: self.model(**f).logits.view(-1), features)}

    # ---- inference -----------------------------------------------------------------------
    def compute_score(self, pairs: Sequence, batch_size: int = 64, normalize: bool = False,
                      max_tokens: Optional[int] = None) -> list:
        """Scores of (query, document) pairs, in input order; sigmoid when ``normalize``.

        Pairs are tokenised once, sorted by token count and padded per batch (little padding).
        BERT, RoBERTa and XLM-R classifiers are scored by :func:`~.packed.packed_logits` (no work on
        pad tokens, the last layer for ``[CLS]`` only; same scores), other models by their forward.
        ``max_tokens`` caps the padded tokens of a batch too.
        """
        def score(**features):
            logits = packed_logits(self.model, **features)
            return self(**features)["scores"] if logits is None else logits

        return self.score_pairs(pairs, batch_size, normalize, score, max_tokens)

    # ---- saving --------------------------------------------------------------------------
    def save_pretrained(self, output_dir: str, state_dict: Optional[dict] = None, merge_lora: bool = False) -> None:
        """Save the transformers checkpoint (plain ``from_pretrained`` loads it) and our settings."""
        self.model = save_encoder(self.model, self.tokenizer, output_dir, strip_prefix(state_dict, "model."),
                                  merge_lora)
        write_settings(output_dir, {"kind": kinds.get("reranker").saved, "max_length": self.max_length,
                                    "query_instruction": self.query_instruction,
                                    "passage_instruction": self.passage_instruction})
