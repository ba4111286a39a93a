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
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .. import kinds
from ..errors import ConfigError
from .checks import check_section, field_names, line_of
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
        path = os.path.join(output_dir, CONFIG_FILE)
        OmegaConf.save(OmegaConf.create(self.raw), path)
        return path


@dataclass
class Source:
    """Where the values came from: the YAML file, and the keys the command line set."""

    path: str
    overridden: set = field(default_factory=set)  # "section.key" set by a key=value override
    top: set = field(default_factory=set)  # the first names of the overrides (sections, or mistakes)

    def __call__(self, section: str, key: str) -> str:
        """``command line`` or ``file:line`` (the file alone when the line is not found)."""
        if f"{section}.{key}" in self.overridden:
            return "command line"
        line = line_of(self.path, section, key)
        return f"{self.path}:{line}" if line else self.path

    def locate(self, message: str) -> str:
        """Where the first ``section.key`` a message names came from (the file when it names none)."""
        match = re.search(rf"\b({'|'.join(SECTIONS)})\.(\w+)", message)
        return self(*match.groups()) if match else self.path


CONFIG_FILE = "rag_retrieval_config.yaml"  # the resolved config a run saves in its output folder


# train keys under the name a newer transformers gives them -> the name older releases know (5.17 has
# only gradient_checkpointing; later releases call it activation_checkpointing, the old name an alias)
RENAMED_TRAIN_KEYS = {"activation_checkpointing": "gradient_checkpointing",
                      "activation_checkpointing_kwargs": "gradient_checkpointing_kwargs"}


def _build(cls, section: str, values: dict, source: Source):
    valid = field_names(cls)
    if section == "train":  # the configs' newer names work with the transformers installed
        values = {(RENAMED_TRAIN_KEYS[k] if k in RENAMED_TRAIN_KEYS and k not in valid and
                   RENAMED_TRAIN_KEYS[k] in valid else k): v for k, v in values.items()}
    for key in values:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{source(section, key)}: unknown key '{section}.{key}'.{hint} Valid keys of "
                              f"'{section}': {', '.join(sorted(valid))}")
    values = check_section(cls, section, values, lambda key: source(section, key))
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(f"{source.locate(str(err))}: {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source.locate(str(err))}: bad value in section '{section}': {err}") from None


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """Split ``--config FILE key=value ...`` into (file, overrides)."""
    parser = argparse.ArgumentParser(prog="rag-retrieval train <kind>", allow_abbrev=False,
                                     description="Train a model of one kind from a YAML config; key=value words "
                                                 "override it (rag-retrieval train <kind> --help lists the keys).")
    parser.add_argument("--config", required=True, help="YAML config (configs/<kind>/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.learning_rate=1e-5")
    args = parser.parse_args(argv)
    return args.config, args.overrides


def _parse_override(item: str) -> dict:
    """One ``section.key=value`` word as a nested dict; a YAML mistake names the word."""
    if "=" not in item or item.startswith("="):
        raise ConfigError(f"override '{item}' is not of the form section.key=value")
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([item]))
    except (OmegaConfBaseException, Exception) as err:  # yaml.YAMLError and friends
        first = str(err).strip().split("\n")[0]
        raise ConfigError(f"override '{item}': the value is not valid YAML ({first})") from None


def read_raw(path: str, overrides: Sequence[str]) -> tuple:
    """The YAML file with the ``key=value`` overrides merged over it: (plain dict of sections,
    :class:`Source`). Sections are not checked here (:func:`check_sections` does)."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}" if not os.path.isdir(path) else
                          f"--config {path}: is a folder; name a YAML file in it")
    try:
        conf = OmegaConf.load(path)
    except (OmegaConfBaseException, Exception) as err:  # yaml.YAMLError and friends
        raise ConfigError(f"{path}: cannot parse YAML: {err}") from None
    source = Source(path)
    for item in overrides:
        parsed = _parse_override(item)
        source.overridden.update(f"{s}.{k}" for s, keys in parsed.items() if isinstance(keys, dict) for k in keys)
        source.top.update(parsed)
        conf = OmegaConf.merge(conf, parsed)
    try:
        raw = OmegaConf.to_container(conf, resolve=True) or {}
    except OmegaConfBaseException as err:
        raise ConfigError(f"{path}: {err}") from None
    return raw, source


def check_sections(raw: dict, source: Source, classes: dict) -> None:
    """Every top-level name must be a section holding a mapping; a misspelt section or a bare key
    (``learning_rate=1e-5``) suggests the right one."""
    for name, value in raw.items():
        if name in SECTIONS:
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{source.path}: section '{name}' must be a mapping, got {type(value).__name__}")
            continue
        where = "command line" if name in source.top else source.path
        homes = [s for s, cls in classes.items() if name in field_names(cls)]
        close = difflib.get_close_matches(name, SECTIONS, n=1)
        hint = (f" Did you mean '{homes[0]}.{name}'?" if homes else f" Did you mean '{close[0]}'?" if close else "")
        raise ConfigError(f"{where}: unknown section '{name}'.{hint} Valid sections: {', '.join(SECTIONS)}")


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
    raw, source = read_raw(path, overrides)
    classes = {"model": MODEL_SECTIONS[spec.name], "data": DataArgs, "loss": LossArgs, "train": training_args,
               "eval": EvalArgs}
    check_sections(raw, source, classes)
    model = _build(classes["model"], "model", raw.get("model") or {}, source)
    data = _build(DataArgs, "data", raw.get("data") or {}, source)
    loss = _build(LossArgs, "loss", raw.get("loss") or {}, source)
    if loss.name is None:
        loss.name = spec.default_loss
    try:
        loss.check_names(spec.losses)
    except ConfigError as err:
        raise ConfigError(f"{source.locate(str(err))}: {err}") from None
    evaluation = _build(EvalArgs, "eval", raw.get("eval") or {}, source)
    train_values = {**TRAIN_DEFAULTS, **(raw.get("train") or {})}
    train = _build(training_args, "train", train_values, source)
    if "bf16" in train_values:
        train_values["bf16"] = train.bf16  # 'auto' as the TrainingArguments class resolved it
    raw["train"] = train_values
    cfg = Config(model=model, data=data, loss=loss, train=train, eval=evaluation, kind=spec.name, source=path,
                 raw=raw)
    try:
        model.check(cfg)
    except ConfigError as err:
        raise ConfigError(f"{source.locate(str(err))}: {err}") from None
    _check_paths(source, data, evaluation)
    return cfg


def inputs_exist(value: str) -> bool:
    """A data source is there: a file or folder, ``FOLDER:split`` of a datasets folder, or a hub id
    (checked when read)."""
    folder, sep, _ = value.rpartition(":")
    return value.startswith("hf://") or os.path.exists(value) or bool(sep and os.path.isdir(folder))


def _check_paths(source: Source, data: DataArgs, evaluation: EvalArgs) -> None:
    for key, value in [("data.train_path", f) for f in data.train_files] + [
        ("eval.rerank_path", evaluation.rerank_path),
        ("eval.corpus_path", evaluation.corpus_path),
        ("eval.queries_path", evaluation.queries_path),
        ("eval.beir_path", evaluation.beir_path),
    ]:
        if value is not None and not inputs_exist(value):
            section, name = key.split(".")
            raise ConfigError(f"{source(section, name)}: {key}: file not found: {value}")


def dump(cfg: Config) -> str:
    """The resolved config as JSON text (for logs)."""
    return json.dumps(cfg.raw, indent=1, default=str)
