"""One YAML, five sections (model, data, loss, train, eval), command line wins.

``load_config(["--config", "x.yaml", "train.learning_rate=1e-5"], "embedding", TrainingArgs)`` reads
the YAML with OmegaConf (so ``2e-5`` is a float, not a string), merges the ``key=value`` dotlist
over it, then builds one dataclass per section with unknown keys forbidden: the ``model:`` section
of the kind named, and ``train:`` as the TrainingArguments class the entry point hands in (this
module knows nothing of models or the Trainer). Every check here runs before any model is loaded,
so a typo costs a second, not a model download.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .. import kinds
from ..errors import ConfigError
from .models import MODEL_SECTIONS, ModelArgs
from .sections import TRAIN_DEFAULTS, DataArgs, EvalArgs, LossArgs

SECTIONS = ("model", "data", "loss", "train", "eval")


@dataclass
class Config:
    model: ModelArgs  # the kind's own section (config.models)
    data: DataArgs
    loss: LossArgs
    train: Any  # the entry point's TrainingArguments (transformers.TrainingArguments + run-safety keys)
    eval: EvalArgs
    kind: str = "embedding"  # canonical kind (rag_retrieval.kinds)
    source: Optional[str] = None  # the YAML file it came from
    raw: dict = field(default_factory=dict)  # resolved plain dict, as written to output_dir

    def save(self, output_dir: Optional[str] = None) -> str:
        """Write the resolved config to ``output_dir/rag_retrieval_config.yaml``; returns the path."""
        output_dir = output_dir or self.train.output_dir
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "rag_retrieval_config.yaml")
        OmegaConf.save(OmegaConf.create(self.raw), path)
        return path


def _fields(cls) -> list:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _yaml_no(cls, values: dict) -> dict:
    """YAML reads a bare ``no`` as False; give it back as "no" to non-bool fields (save_strategy: no)."""
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    return {k: "no" if v is False and "bool" not in types.get(k, "bool") else v for k, v in values.items()}


def _build(cls, section: str, values: dict, where: str):
    valid = _fields(cls)
    values = _yaml_no(cls, values)
    for key in values:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{where}: unknown key '{section}.{key}'.{hint} Valid keys of '{section}': {', '.join(sorted(valid))}"
            )
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: bad value in section '{section}': {err}") from None


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """Split ``--config FILE key=value ...`` into (file, overrides)."""
    parser = argparse.ArgumentParser(description="rag-retrieval trainer", allow_abbrev=False)
    parser.add_argument("--config", required=True, help="YAML config (configs/<kind>/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.learning_rate=1e-5")
    args = parser.parse_args(argv)
    return args.config, args.overrides


def read_raw(path: str, overrides: Sequence[str]) -> dict:
    """The YAML file with the ``key=value`` overrides merged over it, as a plain dict of sections."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        conf = OmegaConf.load(path)
    except (OmegaConfBaseException, Exception) as err:  # yaml.YAMLError and friends
        raise ConfigError(f"{path}: cannot parse YAML: {err}") from None
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
    try:
        conf = OmegaConf.merge(conf, OmegaConf.from_dotlist(list(overrides)))
        raw = OmegaConf.to_container(conf, resolve=True) or {}
    except OmegaConfBaseException as err:
        raise ConfigError(f"{path}: {err}") from None
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; valid sections: {', '.join(SECTIONS)}")
    for name in SECTIONS:
        if raw.get(name) is not None and not isinstance(raw[name], dict):
            raise ConfigError(f"{path}: section '{name}' must be a mapping, got {type(raw[name]).__name__}")
    return raw


def load_config(argv: Optional[Sequence[str]], kind: str, training_args: type) -> Config:
    """Parse ``--config FILE`` plus ``key=value`` overrides into a :class:`Config`.

    Args:
        argv: command-line words (``sys.argv[1:]`` when None).
        kind: the model kind, any of its names (``rag_retrieval.kinds``): picks the ``model:``
            section and the valid ``loss.name`` values.
        training_args: the dataclass of the ``train:`` section (a ``transformers.TrainingArguments``).

    Returns:
        Config with typed sections.

    Raises:
        ConfigError: missing file, YAML error, unknown section or key, or an invalid value;
            the message names the file and key and lists the valid choices.

    Example:
        >>> from transformers import TrainingArguments
        >>> cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", "loss.temperature=0.05"],
        ...                   "embedding", TrainingArguments)
        >>> cfg.loss.temperature, cfg.loss.name, type(cfg.model).__name__
        (0.05, 'infonce', 'EmbeddingModelArgs')
    """
    path, overrides = parse_args(argv)
    spec = kinds.get(kind)
    raw = read_raw(path, overrides)
    model = _build(MODEL_SECTIONS[spec.name], "model", raw.get("model") or {}, path)
    data = _build(DataArgs, "data", raw.get("data") or {}, path)
    loss = _build(LossArgs, "loss", raw.get("loss") or {}, path)
    if loss.name is None:
        loss.name = spec.default_loss
    try:
        loss.check_names(spec.losses)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    evaluation = _build(EvalArgs, "eval", raw.get("eval") or {}, path)
    train_values = {**TRAIN_DEFAULTS, **(raw.get("train") or {})}
    train = _build(training_args, "train", train_values, path)
    if "bf16" in train_values:
        train_values["bf16"] = train.bf16  # 'auto' as the TrainingArguments class resolved it
    raw["train"] = train_values
    cfg = Config(model=model, data=data, loss=loss, train=train, eval=evaluation, kind=spec.name, source=path,
                 raw=raw)
    try:
        model.check(cfg)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    _check_paths(path, data, evaluation)
    return cfg


def _check_paths(path: str, data: DataArgs, evaluation: EvalArgs) -> None:
    for key, value in [("data.train_path", f) for f in data.train_files] + [
        ("eval.rerank_path", evaluation.rerank_path),
        ("eval.corpus_path", evaluation.corpus_path),
        ("eval.queries_path", evaluation.queries_path),
    ]:
        if value is not None and not os.path.isfile(value):
            raise ConfigError(f"{path}: {key}: file not found: {value}")


def dump(cfg: Config) -> str:
    """The resolved config as JSON text (for logs)."""
    return json.dumps(cfg.raw, indent=1, default=str)
