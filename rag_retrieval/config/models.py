"""The ``model:`` section, one dataclass per kind: another kind's key is an unknown key.

Each field is a keyword of the kind's ``from_pretrained`` (the LoRA keys become its ``lora=``), so a
model builds itself from its section (``Model.from_args(section, data)``) with no keyword relay.
Checks that need other sections too (loss, data) live in :meth:`ModelArgs.check`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Optional

from .. import kinds
from ..errors import ConfigError
from ..prompts import check_pe_rank_prompt, split_template
from .sections import check_choice

LORA_KEYS = ("use_lora", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")
SAVE_KEYS = ("merge_lora",)  # how the run saves, not how the model loads


@dataclass
class ModelArgs:
    """What every kind loads: the checkpoint, its dtype and attention, LoRA."""

    model_name_or_path: str = "minilm"
    dtype: Optional[str] = None  # weights dtype at load: None (checkpoint's), float32, bfloat16, float16
    attn_implementation: Optional[str] = None  # eager | sdpa | flash_attention_2
    trust_remote_code: bool = False
    config_overrides: Optional[dict[str, Any]] = None  # fields of the checkpoint's config to replace, e.g. dropout
    # LoRA (peft); target_modules None lets peft pick the defaults for the architecture
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: Optional[list[str]] = None
    merge_lora: bool = True  # merge the adapter into the weights in the final saved model

    def __post_init__(self):
        check_choice("model", "dtype", self.dtype, (None, "float32", "bfloat16", "float16"))

    @property
    def lora(self) -> Optional[dict]:
        """peft LoraConfig arguments when ``use_lora``, else None."""
        if not self.use_lora:
            return None
        return {"r": self.lora_r, "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout,
                "target_modules": self.lora_target_modules}

    def pretrained_kwargs(self) -> dict:
        """The section as keywords of the kind's ``from_pretrained``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in LORA_KEYS + SAVE_KEYS}
        return {**out, "lora": self.lora}

    def check(self, cfg) -> None:
        """Rules that join this section with the others (``cfg`` is the whole Config); none here."""


@dataclass
class InstructedModelArgs(ModelArgs):
    """Kinds that put an instruction before every query / passage."""

    query_instruction: Optional[str] = None  # prepended to every query (a per-record "prompt" overrides it);
    passage_instruction: Optional[str] = None  # None: the checkpoint's, else "" ("A: " / "B: " for LLM rerankers)


@dataclass
class EmbeddingModelArgs(InstructedModelArgs):
    """``model:`` of ``train embedding``: a bi-encoder."""

    pooling: str = "mean"  # cls | mean | last_token
    normalize: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_choice("model", "pooling", self.pooling, ("cls", "mean", "last_token"))


@dataclass
class RerankerModelArgs(InstructedModelArgs):
    """``model:`` of ``train reranker``: a cross-encoder (a new one-logit head on a plain encoder), or
    with ``separate_layers`` a split cross-encoder that starts from the bi-encoder it is made from."""

    separate_layers: Optional[int] = None  # N > 0: the bottom N layers read query and passage apart, the score
    # is the scaled cosine of their mean vectors (SplitCrossEncoder); 0: a classifier head; None: the saved model's
    score_scale: Optional[float] = None  # split cross-encoder: cosine multiplier (None: the saved one, else 20)
    joint_gate: Optional[bool] = None  # split cross-encoder: the joint layers run apart and jointly, mixed by
    # learnt gates that start at 0 (the bi-encoder exactly); None: the saved model's
    joint_head: Optional[bool] = None  # split cross-encoder: the layers above the split run apart (the base
    # score) and jointly, the joint stream read by learnt weights that start at 0; None: the saved model's

    def __post_init__(self):
        super().__post_init__()
        if self.separate_layers is not None and self.separate_layers < 0:
            raise ConfigError(f"model.separate_layers={self.separate_layers}: give 0 (a classifier head) or a "
                              f"number of bottom layers (1 to the model's layer count)")
        if self.joint_gate and self.separate_layers == 0:
            raise ConfigError("model.joint_gate=true needs model.separate_layers (1 to the model's layer count): "
                              "the gates mix the layers above the split")
        if self.joint_head and self.separate_layers == 0:
            raise ConfigError("model.joint_head=true needs model.separate_layers (1 to the model's layer count): "
                              "the head reads the layers above the split")
        if self.joint_head and self.joint_gate:
            raise ConfigError("model.joint_gate and model.joint_head are two ways to read the joint layers: "
                              "set one of them to true")
        if self.score_scale is not None and self.score_scale <= 0:
            raise ConfigError(f"model.score_scale={self.score_scale}: give a positive multiplier (e.g. 20)")

    def check(self, cfg) -> None:
        check_grouping(cfg)


@dataclass
class LLMRerankerModelArgs(InstructedModelArgs):
    """``model:`` of ``train llm_reranker``: how the decoder scores a (query, passage) prompt."""

    score: Optional[str] = None  # yes_token (default): logit of yes_token (minus no_token's) | head: linear
    # head on the last token; None keeps a saved model's choice
    prompt: Optional[str] = None  # the question after the pair; None: FlagEmbedding's
    yes_token: Optional[str] = None  # None: the saved model's, else "Yes"
    no_token: Optional[str] = None  # e.g. "no" (Qwen3-Reranker): score = logit(yes) - logit(no)
    prompt_template: Optional[str] = None  # "...{query}...{passage}..." instead of FlagEmbedding's layout
    chat_template: bool = False  # wrap the FlagEmbedding-style prompt in the tokenizer's chat template
    cutoff_layers: Optional[list[int]] = None  # layerwise: score after each of these layer counts (trained together)

    def __post_init__(self):
        super().__post_init__()
        if self.score is not None:
            check_choice("model", "score", self.score, ("yes_token", "head"))
        if self.prompt_template is not None:
            try:
                split_template(self.prompt_template)
            except ValueError as err:
                raise ConfigError(f"model.{err}") from None
        if self.cutoff_layers is not None and not self.cutoff_layers:
            raise ConfigError("model.cutoff_layers is empty: give layer counts such as [8, 16], or null")

    def check(self, cfg) -> None:
        check_grouping(cfg)
        if cfg.kind == "llm_layerwise" and self.cutoff_layers is None:
            raise ConfigError("the layerwise LLM reranker is scored after chosen layers: set model.cutoff_layers, "
                              "e.g. [8, 16, 24] (or train the plain llm_reranker kind)")


@dataclass
class ColBERTModelArgs(ModelArgs):
    """``model:`` of ``train colbert``: projection size, markers, query augmentation, punctuation."""

    dim: Optional[int] = None  # None: the checkpoint's projection, else 128 for a new one
    query_marker: Optional[str] = "[unused0]"  # token after [CLS] of queries; null: none
    passage_marker: Optional[str] = "[unused1]"
    query_augmentation: bool = True  # pad queries with [MASK] to data.query_max_len; they count in MaxSim
    mask_punctuation: bool = True  # passage punctuation tokens do not count in MaxSim

    def check(self, cfg) -> None:
        if cfg.loss.matryoshka_dims:
            raise ConfigError("loss.matryoshka_dims is for bi-encoders; ColBERT sets its vector size with model.dim")


@dataclass
class PERankModelArgs(ModelArgs):
    """``model:`` of ``train pe_rank``: ``model_name_or_path`` is the LLM (or a PE-Rank folder to
    continue from, stage 2 after stage 1)."""

    embedder: Optional[str] = None  # the frozen embedder whose passage vectors become passage tokens
    projector_hidden: Optional[int] = None  # hidden size of the 2-layer MLP projector; None: the LLM's
    freeze_llm: Optional[bool] = None  # None: frozen for loss align (stage 1), trained in stage 2
    prompt: Optional[str] = None  # with {query}, {n} and {passages}; None: PE-Rank's
    window_size: Optional[int] = None  # candidates per decoding window (20); more slide from the back, window_step apart
    window_step: Optional[int] = None  # (10); None keeps a continued PE-Rank model's saved value
    context_max_len: Optional[int] = None  # passage text tokens in the contextual prompt and the alignment target (64)

    def __post_init__(self):
        super().__post_init__()
        if self.prompt is not None:
            try:
                check_pe_rank_prompt(self.prompt)
            except ValueError as err:
                raise ConfigError(f"model.prompt: {err}") from None
        size, step = self.window_size, self.window_step
        if size is not None and step is not None and not 0 < step <= size:
            raise ConfigError("model.window_step must be in [1, model.window_size]")

    @property
    def continues(self) -> bool:
        """Whether ``model_name_or_path`` is a PE-Rank folder (stage 2 continues stage 1)."""
        path = self.model_name_or_path
        return os.path.isdir(path) and kinds.read_settings(path).get("kind") == kinds.get("pe_rank").saved

    def frozen_llm(self, objectives) -> bool:
        """Stage 1 (objective ``align``) trains the projector only, unless ``freeze_llm`` says otherwise."""
        return self.freeze_llm if self.freeze_llm is not None else "align" in objectives

    def check(self, cfg) -> None:
        parts = cfg.loss.name.split("+")
        if not self.continues and not self.embedder:
            raise ConfigError("model.embedder is not set: PE-Rank needs the frozen embedder whose passage vectors "
                              "become the LLM's passage tokens (e.g. minilm, BAAI/bge-base-en-v1.5)")
        if "align" in parts and len(parts) > 1:
            raise ConfigError(f"loss.name={cfg.loss.name}: 'align' is stage 1 on its own; stage 2 joins "
                              f"listmle, contextual_listmle and kl with '+'")
        if "align" not in parts and cfg.data.group_size < 2:
            raise ConfigError(f"loss.name={cfg.loss.name} ranks several passages per query: set "
                              f"data.group_size > 1 (got {cfg.data.group_size})")


def check_grouping(cfg) -> None:
    """Loss and grouping must fit: listwise and pairwise losses need several documents per query."""
    parts = cfg.loss.name.split("+")
    if cfg.data.group_size == 1 and any(p in kinds.GROUP_LOSSES for p in parts):
        raise ConfigError(f"loss.name={cfg.loss.name} compares documents of a query: it needs "
                          f"data.group_size > 1 (got 1); use bce or mse for pointwise training")
    if cfg.data.format == "pointwise" and cfg.data.group_size != 1:
        raise ConfigError("data.format=pointwise has one document per record: set data.group_size=1 "
                          "(with loss.name bce or mse), or use the pos_neg / hits formats for groups")


# canonical kind -> its model section
MODEL_SECTIONS = {"embedding": EmbeddingModelArgs, "colbert": ColBERTModelArgs, "reranker": RerankerModelArgs,
                  "llm_reranker": LLMRerankerModelArgs, "llm_layerwise": LLMRerankerModelArgs,
                  "pe_rank": PERankModelArgs}
