"""Inference forward of BERT-family encoders that computes only what the score or embedding needs.

The score of a cross-encoder (bge-reranker, MiniLM, XLM-R) reads the last layer's ``[CLS]`` row
only. This forward, with the model's own modules and weights, therefore

- runs every linear layer, LayerNorm and activation on the real tokens packed into one
  ``(tokens, hidden)`` matrix (no pad rows; attention alone sees the padded ``(batch, heads,
  length, head_dim)`` view with the mask), and
- in the last layer computes keys and values for every token but the query, attention output and
  feed-forward for the ``[CLS]`` row only.

Same math as ``model(**features).logits`` (scores agree to float rounding, tested), with about an
eighth fewer FLOPs on a 6-layer model and none spent on padding. Models it does not know (another
architecture, relative positions, a decoder) return None from :func:`packed_logits` and are
scored by their own forward. :func:`packed_embeddings` runs the same packed layers for a bi-encoder
(``AutoModel``) and pools them (mean over real tokens, or ``[CLS]``, where only that row's last layer is
computed).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .weights import unwrap_peft


def _supported_classes() -> dict:
    """The exact transformers classes this forward reproduces -> their head layout."""
    from transformers import (BertForSequenceClassification, RobertaForSequenceClassification,
                              XLMRobertaForSequenceClassification)

    return {BertForSequenceClassification: "bert", RobertaForSequenceClassification: "roberta",
            XLMRobertaForSequenceClassification: "roberta"}


def supports_packed(model: nn.Module) -> bool:
    """Whether :func:`packed_logits` can score ``model``: exactly transformers' BERT/RoBERTa/XLM-R
    one-logit classifier (not a subclass or remote code of the same name), absolute positions,
    encoder only, plain or LoRA-family peft, weights not sharded (FSDP gathers them only in the
    forwards of the modules it wraps, which this forward does not go through)."""
    if not _plain_weights(model):
        return False
    model = unwrap_peft(model)
    return type(model) in _supported_classes() and model.config.num_labels == 1 and _absolute_encoder(model.config)


def packed_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  token_type_ids: Optional[torch.Tensor] = None, **unused) -> Optional[torch.Tensor]:
    """``(batch,)`` logits of a right-padded batch, equal to ``model(...).logits.view(-1)`` in eval
    mode; None when the model is not supported (see :func:`supports_packed`) or in training mode.
    """
    if unused or model.training or not supports_packed(model):
        return None
    model = unwrap_peft(model)
    base = getattr(model, model.base_model_prefix)
    cls = _packed_forward(base, input_ids, attention_mask, token_type_ids, cls_only=True)
    if cls is None:
        return None
    cls = cls[:, None, :]  # (batch, 1, d): the last layer's [CLS] rows
    if _supported_classes()[type(model)] == "bert":
        return model.classifier(base.pooler(cls)).view(-1)
    return model.classifier(cls).view(-1)  # RobertaClassificationHead reads [:, 0, :]


def supports_packed_encoder(model: nn.Module) -> bool:
    """Whether :func:`packed_embeddings` can encode with ``model``: exactly transformers'
    ``BertModel`` / ``RobertaModel`` / ``XLMRobertaModel`` (plain or LoRA-family peft), with the
    conditions of :func:`supports_packed`."""
    from transformers import BertModel, RobertaModel, XLMRobertaModel

    if not _plain_weights(model):
        return False
    model = unwrap_peft(model)
    return type(model) in (BertModel, RobertaModel, XLMRobertaModel) and _absolute_encoder(model.config)


def packed_token_states(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        token_type_ids: Optional[torch.Tensor] = None, **unused) -> Optional[torch.Tensor]:
    """``(tokens, d)`` last-layer states of the real tokens of a right-padded batch, row after row (the
    rows of ``model(...).last_hidden_state[attention_mask.bool()]``); None when the model is not
    supported or in training mode (the Trainer's forward keeps the model's own code)."""
    if unused or model.training or not supports_packed_encoder(model):
        return None
    return _packed_forward(unwrap_peft(model), input_ids, attention_mask, token_type_ids, cls_only=False)


def packed_embeddings(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      token_type_ids: Optional[torch.Tensor] = None, pooling: str = "mean",
                      **unused) -> Optional[torch.Tensor]:
    """``(batch, d)`` pooled last-layer states (``mean`` over real tokens or ``cls``) of a right-padded
    batch, equal to pooling ``model(...).last_hidden_state``; None when the model or the pooling is
    not supported, or in training mode."""
    if unused or model.training or pooling not in ("mean", "cls") or not supports_packed_encoder(model):
        return None
    out = _packed_forward(unwrap_peft(model), input_ids, attention_mask, token_type_ids, cls_only=pooling == "cls")
    if out is None or pooling == "cls":
        return out
    lengths = attention_mask.bool().sum(1)
    rows = torch.repeat_interleave(torch.arange(len(lengths), device=out.device), lengths)
    sums = out.new_zeros(len(lengths), out.shape[-1]).index_add_(0, rows, out)
    return sums / lengths.clamp(min=1)[:, None].to(out.dtype)


def _plain_weights(model: nn.Module) -> bool:
    """Not prompt-tuning peft (virtual tokens), not FSDP-sharded weights."""
    peft_config = getattr(model, "peft_config", None)
    if peft_config is not None:
        active = getattr(model, "active_adapter", None)
        if not isinstance(active, str) or peft_config[active].is_prompt_learning:
            return False  # prompt tuning adds virtual tokens in the peft wrapper's forward
    return not any(type(m).__name__.startswith("FSDP") or type(m).__name__ == "FullyShardedDataParallel"
                   for m in model.modules())


def _absolute_encoder(config) -> bool:
    return (getattr(config, "position_embedding_type", "absolute") in (None, "absolute")
            and not getattr(config, "is_decoder", False) and not getattr(config, "add_cross_attention", False))


def _packed_forward(base: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: Optional[torch.Tensor], cls_only: bool) -> Optional[torch.Tensor]:
    """The encoder layers of ``base`` (embeddings + encoder.layer) on the real tokens packed into one
    matrix: ``(tokens, d)`` last-layer states in row order, or with ``cls_only`` ``(batch, d)`` of the
    first tokens (the last layer then computes attention output and feed-forward for them only).
    None when a row does not start with a real token (left padding), and off the CPU: on a GPU the
    padded rows cost less than the packing's extra gathers and small kernels (an H200 encoded 2,000
    pkgdesc passages 0.85x as fast as sentence-transformers' padded forward this way), so the model's
    own forward runs there."""
    if input_ids.device.type != "cpu":
        return None
    mask = attention_mask.bool()
    if not bool(mask[:, 0].all()):
        return None  # [CLS] must be the first token (right padding)
    batch, length = mask.shape
    heads = base.config.num_attention_heads
    hidden = base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)[mask]  # (tokens, d)
    width = hidden.shape[-1]
    cls_rows = F.pad(mask.sum(1).cumsum(0)[:-1], (1, 0))  # packed row of each sequence's first token
    attn_mask = mask[:, None, None, :]

    def padded(x: torch.Tensor, parts: int) -> list:  # (tokens, parts*d) -> parts x (batch, heads, length, head_dim)
        out = x.new_zeros(batch, length, x.shape[-1])
        out[mask] = x
        return [t.view(batch, length, heads, -1).transpose(1, 2) for t in out.chunk(parts, -1)]

    layers = base.encoder.layer
    for i, layer in enumerate(layers):
        last = cls_only and i == len(layers) - 1
        attention = layer.attention.self
        rows = hidden[cls_rows] if last else hidden  # the rows whose output is still needed
        projections = [attention.key, attention.value] if last else [attention.query, attention.key, attention.value]
        if all(type(m) is nn.Linear and m.bias is not None for m in projections):  # q, k, v in one product
            fused = F.linear(hidden, torch.cat([m.weight for m in projections]), torch.cat([m.bias for m in projections]))
            heads_of = padded(fused, len(projections))
        else:
            heads_of = [t for m in projections for t in padded(m(hidden), 1)]
        if last:
            query = attention.query(rows).view(batch, 1, heads, -1).transpose(1, 2)
            key, value = heads_of
        else:
            query, key, value = heads_of
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
        context = context.transpose(1, 2).reshape(batch, -1, width)
        context = context[:, 0] if last else context[mask]
        out = layer.attention.output
        rows = out.LayerNorm(out.dense(context) + rows)
        ffn = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(rows))
        hidden = layer.output.LayerNorm(layer.output.dense(ffn) + rows)
    return hidden[cls_rows] if cls_only and not layers else hidden
