"""A cross-encoder that starts from the bi-encoder it is made from.

The pair is read in one pass, ``[CLS] query [SEP] [CLS] passage [SEP]``, each segment with its own
positions. The bottom ``separate_layers`` layers let a token attend to its own segment only (there
the model is the bi-encoder, query and passage encoded apart), the layers above let query and passage
tokens attend to each other (a cross-encoder); the score is the scaled cosine of the two segments'
mean token vectors. With every layer separate it scores exactly as the bi-encoder does (mean pooling,
cosine); with fewer it keeps part of the bi-encoder's ranking before any training, where a new
head starts at random, and the joint layers learn the query-passage interactions a bi-encoder
cannot see (DeFormer, PreTTR and MORES split encoders the same way, to save compute; here the split
is the initialisation).

With ``joint_gate`` the layers above the split run both ways, apart and jointly, and a learnt gate per
layer (0 at the start) mixes them: ``h = apart + g * (joint - apart)``. At g = 0 every layer is
separate, so an untrained gated model scores exactly as the bi-encoder it is made from (a fine-tuned
embedding model's ranking is kept whole), and training opens the gates as far as the interactions
help. It costs one more pass of each joint layer.

With ``joint_head`` the two streams stay apart to the end: the layers above the split run once apart
(the bi-encoder's stream, whose cosine is the base score) and once jointly from the split's output (a
cross-encoder's stream), and a learnt weight per hidden dimension (0 at the start) reads the joint
stream: ``score = scale * (cos(q, p) + sum_d w_d * q'_d * p'_d)``, with q', p' the joint stream's
normalised segment means. At w = 0 the model is the bi-encoder exactly; training learns what the
joint layers add to its score (a residual), where the gates above trade the two streams off.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from transformers import AutoModel, AutoTokenizer

from .. import kinds
from ..utils.batching import merge_chunks
from .hub import resolve_model_path
from .pair_scorer import PairScorer
from .weights import (load_auto_model, load_kwargs, maybe_wrap_lora, read_settings, save_encoder, strip_prefix,
                      unwrap_peft, write_settings)


class SplitCrossEncoder(PairScorer):
    """Score (query, passage) pairs with a plain encoder (``AutoModel``) split into separate and joint layers.

    Args:
        model: the encoder (BERT-like: ``embeddings`` and ``encoder.layer``; optionally wrapped by peft).
        tokenizer: its tokenizer.
        max_length: token limit of the pair (the query takes at most half, the passage the rest).
        separate_layers: bottom layers in which query and passage do not see each other.
        score_scale: the cosine's multiplier (the inverse of a bi-encoder's InfoNCE temperature).
        query_instruction / passage_instruction: text put before the query / the passage.
        joint_gate: the joint layers' starting gates (a list, one per layer above the split; zeros for
            a new model), or None for plain joint layers.
        joint_head: the joint stream's weights (a list, one per hidden dimension; zeros for a new model),
            or None: the score is then the last layer's cosine alone.

    Example:
        >>> ce = SplitCrossEncoder.from_pretrained("tiny-bert", separate_layers=1)
        >>> len(ce.compute_score([("q", "a doc"), ("q", "another doc")]))
        2
    """

    def __init__(self, model, tokenizer, max_length: int = 512, separate_layers: int = 1, score_scale: float = 20.0,
                 query_instruction: str = "", passage_instruction: str = "",
                 joint_gate: Optional[Sequence[float]] = None, joint_head: Optional[Sequence[float]] = None):
        super().__init__()
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        self.query_instruction, self.passage_instruction = query_instruction, passage_instruction
        self.new_modules: tuple = ()  # no new head: every weight comes from the checkpoint
        layers = self.layers()
        if not 0 < separate_layers <= len(layers):
            raise ValueError(f"model.separate_layers={separate_layers}: the model has {len(layers)} layers, "
                             f"give 1 to {len(layers)}")
        self.separate_layers = separate_layers
        self.score_scale = score_scale
        if joint_gate is not None:
            if len(joint_gate) != len(layers) - separate_layers:
                raise ValueError(f"joint_gate has {len(joint_gate)} values for {len(layers) - separate_layers} "
                                 f"joint layers")
            self.joint_gate = _Weights(joint_gate)
            self.new_modules = ("joint_gate",)  # train.head_learning_rate applies to the gates
        else:
            self.joint_gate = None
        if joint_head is not None:
            if joint_gate is not None:
                raise ValueError("joint_gate and joint_head are two ways to read the joint layers: give one")
            size = model.config.hidden_size
            if len(joint_head) != size:
                raise ValueError(f"joint_head has {len(joint_head)} weights for hidden size {size}")
            self.joint_head = _Weights(joint_head)
            self.new_modules = ("joint_head",)  # train.head_learning_rate applies to the head
        else:
            self.joint_head = None

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, max_length: Optional[int] = None,
                        separate_layers: Optional[int] = None, score_scale: Optional[float] = None,
                        query_instruction: Optional[str] = None, passage_instruction: Optional[str] = None,
                        dtype: Optional[str] = None, attn_implementation: Optional[str] = None,
                        trust_remote_code: bool = False, lora: Optional[dict] = None,
                        config_overrides: Optional[dict] = None, trainable: bool = False,
                        joint_gate: Optional[bool] = None, joint_head: Optional[bool] = None) -> "SplitCrossEncoder":
        """Load an encoder checkpoint (a bi-encoder, or a split cross-encoder saved by us); settings
        not given are the saved ones (``joint_gate=True`` / ``joint_head=True`` on a model saved without
        gates / head adds new ones at 0, False removes them)."""
        path = resolve_model_path(model_name_or_path)
        saved = read_settings(path)
        model, _ = load_auto_model(AutoModel, path, lambda base: load_kwargs(
            dtype, attn_implementation, trust_remote_code, base, config_overrides), trainable=trainable)
        model = maybe_wrap_lora(model, lora, task_type="FEATURE_EXTRACTION")
        pick = lambda given, key, default: given if given is not None else saved.get(key, default)  # noqa: E731
        separate = pick(separate_layers, "separate_layers", None) or len(_layers(model)) // 2
        gates = saved.get("joint_gate") if joint_gate is not False else None
        if joint_gate and (gates is None or len(gates) != len(_layers(model)) - separate):
            gates = [0.0] * (len(_layers(model)) - separate)
        head = saved.get("joint_head") if joint_head is not False else None
        if joint_head and (head is None or len(head) != model.config.hidden_size):
            head = [0.0] * model.config.hidden_size
        return cls(model, AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code),
                   max_length=pick(max_length, "max_length", 512),
                   separate_layers=separate,
                   score_scale=pick(score_scale, "score_scale", 20.0),
                   query_instruction=pick(query_instruction, "query_instruction", ""),
                   passage_instruction=pick(passage_instruction, "passage_instruction", ""), joint_gate=gates,
                   joint_head=head)

    def layers(self):
        return _layers(self.model)

    # ---- inputs ----------------------------------------------------------------------------
    def tokenize(self, queries: Sequence[str], docs: Sequence[str], pad_to_multiple_of: Optional[int] = None,
                 padding: bool = True) -> dict:
        """``[CLS] query [SEP] [CLS] passage [SEP]`` rows; ``token_type_ids`` mark the segment (0 query,
        1 passage). The query keeps at most half of ``max_length``, the passage is cut to the rest."""
        q = self.tokenizer([self.query_instruction + t for t in queries], truncation=True,
                           max_length=max(2, self.max_length // 2))["input_ids"]
        p = self.tokenizer([self.passage_instruction + t for t in docs], truncation=True,
                           max_length=self.max_length)["input_ids"]
        rows = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
        for a, b in zip(q, p):
            room = max(2, self.max_length - len(a))
            b = b if len(b) <= room else b[: room - 1] + b[-1:]  # keep the closing [SEP]
            rows["input_ids"].append(a + b)
            rows["token_type_ids"].append([0] * len(a) + [1] * len(b))
            rows["attention_mask"].append([1] * (len(a) + len(b)))
        if not padding:
            return rows
        return self.tokenizer.pad(rows, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")

    # ---- scoring ---------------------------------------------------------------------------
    def _scores(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        valid = attention_mask.bool()
        segment = torch.where(valid, token_type_ids, -1)
        query_len = ((segment == 0).sum(1, keepdim=True))
        steps = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        positions = torch.where(segment == 1, steps - query_len, steps).clamp(min=0)
        encoder = unwrap_peft(self.model)
        hidden = encoder.embeddings(input_ids=input_ids, position_ids=positions,
                                    token_type_ids=torch.zeros_like(input_ids))
        pad_rows = ~valid[:, :, None] & valid[:, None, :]  # a pad token attends to every real one (no empty rows)
        own = (segment[:, :, None] == segment[:, None, :]) & valid[:, None, :] | pad_rows
        both = valid[:, None, :].expand_as(own)
        eager = getattr(encoder.config, "_attn_implementation", "sdpa") == "eager"
        masks = [_mask(m, hidden.dtype, eager) for m in (own, both)]
        run = lambda layer, x, mask: (lambda out: out[0] if isinstance(out, tuple) else out)(layer(x, mask))  # noqa: E731
        joint = None
        for i, layer in enumerate(self.layers()):
            if i < self.separate_layers:
                hidden = run(layer, hidden, masks[0])
            elif self.joint_head is not None:  # two streams from the split: apart (hidden) and joint
                joint = run(layer, hidden if joint is None else joint, masks[1])
                hidden = run(layer, hidden, masks[0])
            elif self.joint_gate is None:
                hidden = run(layer, hidden, masks[1])
            else:  # apart + g * (joint - apart): at g = 0 the layer is a separate one
                apart = run(layer, hidden, masks[0])
                gate = self.joint_gate.values[i - self.separate_layers].to(apart.dtype)
                hidden = apart + gate * (run(layer, hidden, masks[1]) - apart)
        q = (segment == 0).unsqueeze(-1).to(hidden.dtype)
        p = (segment == 1).unsqueeze(-1).to(hidden.dtype)
        means = lambda h: [torch.nn.functional.normalize(((h * m).sum(1) / m.sum(1).clamp(min=1)).float(), dim=-1)
                           for m in (q, p)]  # noqa: E731
        q_vec, p_vec = means(hidden)
        score = (q_vec * p_vec).sum(-1)
        if joint is not None:
            q_joint, p_joint = means(joint)
            score = score + (q_joint * p_joint) @ self.joint_head.values.float()
        return self.score_scale * score

    def forward(self, **features) -> dict:
        """Tokenised pairs (or length-bucketed sub-batches of them) -> ``{"scores": (N,)}``."""
        return {"scores": merge_chunks(self._scores, features)}

    def compute_score(self, pairs: Sequence, batch_size: int = 64, normalize: bool = False,
                      max_tokens: Optional[int] = None) -> list:
        """Scores of (query, passage) pairs in input order (``score_scale`` x cosine; sigmoid when
        ``normalize``); pairs sorted by length and padded per batch."""
        return self.score_pairs(pairs, batch_size, normalize, lambda **f: self(**f)["scores"], max_tokens)

    # ---- saving ----------------------------------------------------------------------------
    def save_pretrained(self, output_dir: str, state_dict: Optional[dict] = None, merge_lora: bool = False) -> None:
        """Save the encoder (transformers ``AutoModel`` loads it) and the split in our settings."""
        self.model = save_encoder(self.model, self.tokenizer, output_dir, strip_prefix(state_dict, "model."),
                                  merge_lora)
        write_settings(output_dir, {"kind": kinds.get("reranker").saved, "max_length": self.max_length,
                                    "separate_layers": self.separate_layers, "score_scale": self.score_scale,
                                    "query_instruction": self.query_instruction,
                                    "passage_instruction": self.passage_instruction,
                                    "joint_gate": self._saved_values("joint_gate", state_dict),
                                    "joint_head": self._saved_values("joint_head", state_dict)})

    def _saved_values(self, name: str, state_dict: Optional[dict] = None) -> Optional[list]:
        module = getattr(self, name)
        if module is None:
            return None
        values = (state_dict or {}).get(f"{name}.values", module.values)
        return [round(float(v), 8) for v in values.detach().float().cpu()]

    def load_weights(self, checkpoint_dir: str) -> None:
        """Load the encoder weights and the gates / head saved by :meth:`save_pretrained` (resume, best model)."""
        super().load_weights(checkpoint_dir)
        settings = read_settings(checkpoint_dir)
        for name in ("joint_gate", "joint_head"):
            module, values = getattr(self, name), settings.get(name)
            if module is not None and values is not None:
                with torch.no_grad():
                    module.values.copy_(torch.tensor(values, dtype=module.values.dtype))


class _Weights(torch.nn.Module):
    """New learnt values: a gate per joint layer, or a head weight per dimension (a module, so
    train.head_learning_rate finds it by name)."""

    def __init__(self, values: Sequence[float]):
        super().__init__()
        self.values = torch.nn.Parameter(torch.tensor([float(v) for v in values]))


def _layers(model):
    encoder = unwrap_peft(model)
    if not (hasattr(encoder, "embeddings") and hasattr(getattr(encoder, "encoder", None), "layer")):
        raise ValueError(f"model.separate_layers needs a BERT-like encoder (embeddings + encoder.layer), "
                         f"not {type(encoder).__name__}")
    return encoder.encoder.layer


def _mask(allowed: torch.Tensor, dtype, eager: bool) -> torch.Tensor:
    """(N, L, L) allowed-attention -> the (N, 1, L, L) mask a layer takes: additive for eager
    attention, boolean for SDPA."""
    allowed = allowed[:, None]
    return torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype) if eager else allowed
