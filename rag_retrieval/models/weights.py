"""Saving and loading transformer weights, with or without a LoRA adapter (peft).

Every model kind keeps a ``transformers`` model inside; these helpers give them one on-disk
convention: weights and tokenizer at the folder root (so plain ``from_pretrained`` loads them),
or a peft adapter there during training with LoRA.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Optional

from torch import nn

from ..errors import ConfigError
from ..kinds import SETTINGS_FILE, read_settings  # noqa: F401  (the models read their settings from here)

ADAPTER_FILE = "adapter_model.safetensors"


def write_settings(folder: str, settings: dict) -> None:
    """Write ``settings`` (with the model ``kind`` first) as the folder's ``rag_retrieval.json``."""
    with open(os.path.join(folder, SETTINGS_FILE), "w") as f:
        json.dump(settings, f, indent=2)


def is_peft(module: nn.Module) -> bool:
    return hasattr(module, "peft_config")


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (the model itself when there is none)."""
    return model.get_base_model() if is_peft(model) else model


def no_split_modules(*models: nn.Module) -> list:
    """The layer class names FSDP auto-wrap must keep whole (``_no_split_modules``) of the transformers
    models inside one of ours, so ``accelerate``'s transformer-based auto-wrap finds them on our wrapper."""
    names = []
    for model in models:
        names += [n for n in getattr(unwrap_peft(model), "_no_split_modules", None) or [] if n not in names]
    return names


def load_kwargs(dtype: Optional[str] = None, attn_implementation: Optional[str] = None,
                trust_remote_code: bool = False, path: Optional[str] = None,
                config_overrides: Optional[dict] = None, **extra) -> dict:
    """Keyword arguments of ``from_pretrained`` from our model settings (dtype by name).

    ``config_overrides`` (``model.config_overrides``) replace fields of the checkpoint's config read
    from ``path``, e.g. ``{"hidden_dropout_prob": 0.0}``; a name the config does not have is a
    :class:`~rag_retrieval.errors.ConfigError` (raised before any weight is read).

    >>> load_kwargs("bfloat16")["dtype"]
    torch.bfloat16
    """
    if config_overrides:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **extra)
        for key, value in config_overrides.items():
            if not hasattr(config, key):
                raise ConfigError(f"model.config_overrides.{key}: {type(config).__name__} of {path} has no field "
                                  f"{key!r}; fields: {', '.join(sorted(config.to_dict()))}")
            setattr(config, key, value)
        extra = {"config": config}
    kwargs = {"trust_remote_code": trust_remote_code, **extra}
    if dtype:
        import torch

        kwargs["dtype"] = getattr(torch, dtype)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    return kwargs


ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(path: str) -> Optional[str]:
    """The base model of a LoRA adapter folder (saved with ``model.merge_lora: false``), else None."""
    config = os.path.join(path, ADAPTER_CONFIG)
    if not os.path.isfile(config) or os.path.isfile(os.path.join(path, "config.json")):
        return None
    with open(config) as f:
        base = json.load(f).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{config} names no base_model_name_or_path: the adapter cannot be loaded")
    return base


def model_source(path: str) -> str:
    """Where a model's config and weights load from: the base model of a LoRA adapter folder, else
    ``path`` itself."""
    from .hub import resolve_model_path

    base = adapter_base(path)
    return resolve_model_path(base) if base else path


def load_auto_model(auto_cls, path: str, kwargs_for, trainable: bool = False) -> tuple:
    """``auto_cls.from_pretrained`` of a checkpoint folder, hub id, or of a LoRA adapter folder:
    its base model with the adapter attached (peft, unmerged; ``trainable``: the adapter keeps
    learning, for training runs that continue from it). ``kwargs_for(base_path)`` gives the
    loading kwargs. Returns (model, names of the modules the checkpoint did not hold, e.g. a new
    head: what ``train.head_learning_rate`` applies to)."""
    source = model_source(path)
    with held_load_reports() as reports:
        model, info = auto_cls.from_pretrained(source, output_loading_info=True, **kwargs_for(source))
    if source != path:
        from peft import PeftModel

        # the adapter holds the trained head (modules_to_save): nothing is new
        return PeftModel.from_pretrained(model, path, is_trainable=trainable), ()
    new = tuple(sorted({key.rsplit(".", 1)[0] for key in info["missing_keys"]}))
    only_a_new_head = new and all(m.split(".")[0] in HEADS for m in new) and not info.get("unexpected_keys") \
        and not info.get("mismatched_keys")
    if only_a_new_head:  # on purpose: a plain encoder or LLM gets its scoring head
        logging.getLogger(__name__).info("%s: a new %s head (not in the checkpoint), initialised at random",
                                         type(model).__name__, ", ".join(new))
    else:
        for record in reports:  # anything else missing or unexpected: transformers' report, as it was
            logging.getLogger(record.name).handle(record)
    return model, new


HEADS = ("classifier", "score")  # the one-logit heads AutoModelForSequenceClassification adds


@contextlib.contextmanager
def held_load_reports():
    """Hold back transformers' LOAD REPORT warnings while a model loads; yields the held records."""
    held: list = []

    class Hold(logging.Filter):
        def filter(self, record):
            if "LOAD REPORT" in str(record.msg):
                held.append(record)
                return False
            return True

    target = logging.getLogger("transformers.modeling_utils")
    hold = Hold()
    target.addFilter(hold)
    try:
        yield held
    finally:
        target.removeFilter(hold)


def load_tokenizer(path: str, trust_remote_code: bool = False):
    """The tokenizer of ``path``; one without a pad token (decoder LLMs) pads with eos, else unk."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def maybe_wrap_lora(model: nn.Module, lora: Optional[dict], task_type: str) -> nn.Module:
    """Wrap ``model`` with a LoRA adapter when ``lora`` (r, lora_alpha, lora_dropout, target_modules) is given."""
    if not lora or is_peft(model):
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(task_type=task_type, **{k: v for k, v in lora.items() if v is not None})
    return get_peft_model(model, config)


def strip_prefix(state_dict: Optional[dict], prefix: str) -> Optional[dict]:
    """Keep the entries under ``prefix`` with the prefix removed (None stays None).

    >>> strip_prefix({"encoder.w": 1, "head.b": 2}, "encoder.")
    {'w': 1}
    """
    if state_dict is None:
        return None
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def save_encoder(
    model: nn.Module, tokenizer, output_dir: str, state_dict: Optional[dict] = None, merge_lora: bool = False
) -> nn.Module:
    """Save a transformers model (plain or peft) and its tokenizer to ``output_dir``.

    Returns the model that was saved (the merged one when ``merge_lora``).
    """
    os.makedirs(output_dir, exist_ok=True)
    if is_peft(model) and merge_lora:
        model = model.merge_and_unload()
        state_dict = None  # the merged weights are the live ones
    if is_peft(model):  # a local base is recorded as an absolute path: the adapter loads from any directory
        for config in model.peft_config.values():
            base = config.base_model_name_or_path
            if base and not os.path.isabs(base) and os.path.isdir(base):
                config.base_model_name_or_path = os.path.abspath(base)
    model.save_pretrained(output_dir, state_dict=state_dict)
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    return model


def load_encoder_weights(model: nn.Module, checkpoint_dir: str) -> None:
    """Load weights written by :func:`save_encoder` into ``model`` in place.

    Raises:
        FileNotFoundError: no weights in ``checkpoint_dir``.
        RuntimeError: the weights do not fit the model (missing or unexpected keys).
    """
    from safetensors.torch import load_file

    adapter = os.path.join(checkpoint_dir, ADAPTER_FILE)
    if is_peft(model) and os.path.isfile(adapter):
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(adapter))
        if getattr(result, "unexpected_keys", None):
            raise RuntimeError(f"{adapter}: unexpected adapter keys {result.unexpected_keys[:5]}")
        return
    single = os.path.join(checkpoint_dir, "model.safetensors")
    if os.path.isfile(single):
        target = unwrap_peft(model)
        missing, unexpected = target.load_state_dict(load_file(single), strict=False)
        tied = set(getattr(target, "_tied_weights_keys", None) or [])
        missing = [k for k in missing if k not in tied]
        if missing or unexpected:
            raise RuntimeError(f"{single}: weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return
    if os.path.isfile(os.path.join(checkpoint_dir, "model.safetensors.index.json")):
        from transformers.trainer_utils import load_sharded_checkpoint

        load_sharded_checkpoint(unwrap_peft(model), checkpoint_dir, strict=True)
        return
    raise FileNotFoundError(f"no model weights ({ADAPTER_FILE} or model.safetensors) in {checkpoint_dir}")


def enable_checkpointing(model, **kwargs) -> None:
    """Activation checkpointing on a transformers model, under the name the installed transformers
    uses: ``activation_checkpointing_enable(activation_checkpointing_kwargs=...)`` in newer releases,
    ``gradient_checkpointing_enable(gradient_checkpointing_kwargs=...)`` before (5.17); then inputs that
    require grads where the embeddings are frozen (LoRA). The wrappers' own ``*_checkpointing_enable``,
    which the Trainer calls under either name, come here."""
    options = kwargs.get("activation_checkpointing_kwargs", kwargs.get("gradient_checkpointing_kwargs"))
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    if hasattr(model, "enable_input_require_grads"):  # LoRA: frozen embeddings need this
        model.enable_input_require_grads()
