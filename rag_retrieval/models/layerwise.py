"""Layerwise scoring: a decoder's hidden state after each of several layer counts, read at one position.

bge-reranker-v2-minicpm-layerwise style models are scored after ``cutoff_layers`` layers, so a
short cutoff serves faster. Any decoder with a layer list and a final norm can be read that way
(layers past the deepest cutoff are not run); checkpoints whose remote code has its own
``cutoff_layers`` forward (and one head per layer) are read through it instead.
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

import torch
from torch import nn

LAYER_LISTS = ("layers", "h")
FINAL_NORMS = ("norm", "final_layernorm", "ln_f")


def layers_and_norm(decoder: nn.Module) -> tuple:
    """``(name of the decoder's layer list, its final norm)``: the list is cut by name while the
    deepest cutoff runs, and each kept state is normed as the last layer's would be."""
    layers = next((n for n in LAYER_LISTS if isinstance(getattr(decoder, n, None), nn.ModuleList)), None)
    norm = next((getattr(decoder, n) for n in FINAL_NORMS if hasattr(decoder, n)), None)
    if layers is None or norm is None:
        raise ValueError(f"layerwise scoring needs a decoder with a layer list (layers, h) and a final norm "
                         f"(norm, final_layernorm, ln_f); {type(decoder).__name__} has not both")
    return layers, norm


def check_cutoffs(cutoff_layers: Sequence[int], low: int, high: int) -> list:
    """``cutoff_layers`` as a list, each a layer count in ``[low, high]``.

    >>> check_cutoffs((2, 1), 1, 2)
    [2, 1]
    >>> check_cutoffs([3], 1, 2)
    Traceback (most recent call last):
    ...
    ValueError: cutoff_layers=[3]: each must be a layer count in [1, 2]
    """
    cutoff_layers = list(cutoff_layers)
    if not cutoff_layers or any(not isinstance(c, int) or not low <= c <= high for c in cutoff_layers):
        raise ValueError(f"cutoff_layers={cutoff_layers}: each must be a layer count in [{low}, {high}]")
    return cutoff_layers


def has_own_layerwise_forward(lm: nn.Module) -> bool:
    """Whether ``lm.forward`` takes ``cutoff_layers`` (bge-reranker-v2-minicpm-layerwise's remote code)."""
    return "cutoff_layers" in inspect.signature(lm.forward).parameters


def normed_states(decoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  cutoff_layers: Sequence[int], rows: torch.Tensor, last: torch.Tensor) -> list:
    """(N, T) tokens -> one (N, H) final-normed hidden state per cutoff, at positions ``(rows, last)``.

    Hooks keep only the scored position of each cutoff layer's output (not (N, T, H) per layer),
    and the layer list is cut after the deepest cutoff for the one forward.
    """
    layers_name, norm = layers_and_norm(decoder)
    layers = getattr(decoder, layers_name)
    cutoff_layers = check_cutoffs(cutoff_layers, 1, len(layers))
    kept = {}  # layer count -> (N, H) hidden state after it, at the scored position

    def keep(count):
        def hook(module, args, output):
            kept[count] = (output[0] if isinstance(output, tuple) else output)[rows, last]
        return hook

    handles = [layers[c - 1].register_forward_hook(keep(c)) for c in set(cutoff_layers)]
    setattr(decoder, layers_name, layers[: max(cutoff_layers)])  # stop after the deepest cutoff
    try:
        decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    finally:
        setattr(decoder, layers_name, layers)
        for handle in handles:
            handle.remove()
    return [norm(kept[c]) for c in cutoff_layers]


def own_layerwise_score(lm: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        cutoff_layers: Sequence[int], rows: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Checkpoints with their own layerwise forward (bge-reranker-v2-minicpm-layerwise's remote code):
    a one-logit head per layer, read at the last real token as FlagEmbedding does. -> (N, K)"""
    config = lm.config
    cutoff_layers = check_cutoffs(cutoff_layers, getattr(config, "start_layer", 1), config.num_hidden_layers)
    out = lm(input_ids=input_ids, attention_mask=attention_mask, cutoff_layers=cutoff_layers, use_cache=False)
    if any(logits.shape != input_ids.shape for logits in out.logits):
        raise ValueError(f"{type(lm).__name__}: only one-logit layer heads (head_type 'simple') are supported")
    return torch.stack([logits[rows, last] for logits in out.logits], dim=1)  # K x (N, T) -> (N, K)


def layerwise_scores(lm: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     cutoff_layers: Sequence[int], rows: torch.Tensor, last: torch.Tensor,
                     head: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """(N, T) tokens -> (N, K) scores, one column per cutoff: the checkpoint's own layerwise heads
    when it has them, else ``head`` ((N, H) normed states -> (N,)) after each cutoff layer."""
    if has_own_layerwise_forward(lm):
        return own_layerwise_score(lm, input_ids, attention_mask, cutoff_layers, rows, last)
    states = normed_states(lm.base_model, input_ids, attention_mask, cutoff_layers, rows, last)
    return torch.stack([head(state) for state in states], dim=1)  # K x (N,) -> (N, K)
