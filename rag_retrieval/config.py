"""One YAML, four sections (model, data, loss, train), command line wins.

``load_config(["--config", "x.yaml", "train.learning_rate=1e-5"], ...)`` reads the YAML with
OmegaConf (so ``2e-5`` is a float, not a string), merges the ``key=value`` dotlist over it, then
builds one dataclass per section with unknown keys forbidden. Every check here runs before any
model is loaded, so a typo costs a second, not a model download.
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

SECTIONS = ("model", "data", "loss", "train", "eval")


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and the valid values."""


def check_choice(section: str, key: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``, listing them."""
    if value not in choices:
        raise ConfigError(f"{section}.{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


@dataclass
class ModelArgs:
    """``model:`` section: what to load and how it turns text into representations or scores."""

    model_name_or_path: str = "minilm"
    pooling: str = "mean"  # cls | mean | last_token
    normalize: bool = True
    query_instruction: Optional[str] = None  # prepended to every query (a per-record "prompt" overrides it);
    passage_instruction: Optional[str] = None  # None: the checkpoint's, else "" ("A: " / "B: " for LLM rerankers)
    dtype: Optional[str] = None  # weights dtype at load: None (checkpoint's), float32, bfloat16, float16
    attn_implementation: Optional[str] = None  # eager | sdpa | flash_attention_2
    trust_remote_code: bool = False
    config_overrides: Optional[dict] = None  # fields of the checkpoint's config to replace, e.g. dropout
    # LoRA (peft); target_modules None lets peft pick the defaults for the architecture
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: Optional[list] = None
    merge_lora: bool = True  # merge the adapter into the weights in the final saved model
    # ColBERT (train colbert): projection size, markers, query augmentation, punctuation masking
    dim: Optional[int] = None  # None: the checkpoint's projection, else 128 for a new one
    query_marker: Optional[str] = "[unused0]"  # token after [CLS] of queries; null: none
    passage_marker: Optional[str] = "[unused1]"
    query_augmentation: bool = True  # pad queries with [MASK] to data.query_max_len; they count in MaxSim
    mask_punctuation: bool = True  # passage punctuation tokens do not count in MaxSim
    # LLM reranker (train llm_reranker): how the decoder scores a (query, passage) prompt
    llm_score: Optional[str] = None  # yes_token (default): logit of yes_token (minus no_token's) | head: linear
    # head on the last token; None keeps a saved model's choice
    prompt: Optional[str] = None  # the question after the pair; None: FlagEmbedding's
    yes_token: Optional[str] = None  # None: the saved model's, else "Yes"
    no_token: Optional[str] = None  # e.g. "no" (Qwen3-Reranker): score = logit(yes) - logit(no)
    prompt_template: Optional[str] = None  # "...{query}...{passage}..." instead of FlagEmbedding's layout
    chat_template: bool = False  # wrap the FlagEmbedding-style prompt in the tokenizer's chat template
    cutoff_layers: Optional[list] = None  # layerwise: score after each of these layer counts (trained together)
    # PE-Rank (train pe_rank): model_name_or_path is the LLM (or a PE-Rank folder to continue from)
    embedder: Optional[str] = None  # the frozen embedder whose passage vectors become passage tokens
    projector_hidden: Optional[int] = None  # hidden size of the 2-layer MLP projector; None: the LLM's
    freeze_llm: Optional[bool] = None  # None: frozen for loss align (stage 1), trained in stage 2
    window_size: Optional[int] = None  # candidates per decoding window (20); more slide from the back, window_step apart
    window_step: Optional[int] = None  # (10); None keeps a continued PE-Rank model's saved value
    context_max_len: Optional[int] = None  # passage text tokens in the contextual prompt and the alignment target (64)

    def __post_init__(self):
        check_choice("model", "pooling", self.pooling, ("cls", "mean", "last_token"))
        check_choice("model", "dtype", self.dtype, (None, "float32", "bfloat16", "float16"))
        if self.config_overrides is not None and not isinstance(self.config_overrides, dict):
            raise ConfigError(f"model.config_overrides must be a mapping of config fields to values, "
                              f"e.g. {{hidden_dropout_prob: 0.0}}; got {self.config_overrides!r}")
        if self.use_lora and self.lora_r <= 0:
            raise ConfigError(f"model.lora_r must be > 0, got {self.lora_r}")
        if self.llm_score is not None:
            check_choice("model", "llm_score", self.llm_score, ("yes_token", "head"))
        if self.prompt_template is not None:
            from .models.llm_reranker import split_template

            try:
                split_template(self.prompt_template)
            except ValueError as err:
                raise ConfigError(f"model.{err}") from None
        if self.cutoff_layers is not None and (
                not self.cutoff_layers or any(not isinstance(c, int) or c < 1 for c in self.cutoff_layers)):
            raise ConfigError(f"model.cutoff_layers must be a list of layer counts >= 1, got {self.cutoff_layers}")

    @property
    def lora(self) -> Optional[dict]:
        """peft LoraConfig arguments when ``use_lora``, else None."""
        if not self.use_lora:
            return None
        return {"r": self.lora_r, "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout,
                "target_modules": self.lora_target_modules}


DATA_FORMATS = ("pos_neg", "hits", "pointwise")


@dataclass
class DataArgs:
    """``data:`` section: where the examples are, their format, and how they are grouped."""

    train_path: Optional[Any] = None  # a JSONL file, or a list of them
    format: str = "pos_neg"
    group_size: int = 8  # 1 positive + group_size-1 negatives per query
    query_max_len: int = 64
    passage_max_len: int = 256
    length_buckets: int = 1  # split each batch into N sub-batches of similar length (less padding, same loss)
    skip_bad_lines: bool = False  # report and skip malformed records instead of failing
    max_examples: Optional[int] = None  # use only the first N records (quick runs)
    dataloader_seed: Optional[int] = None  # defaults to train.seed

    def __post_init__(self):
        check_choice("data", "format", self.format, DATA_FORMATS)
        if self.group_size < 1:
            raise ConfigError(f"data.group_size must be >= 1, got {self.group_size}")
        if self.length_buckets < 1:
            raise ConfigError(f"data.length_buckets must be >= 1, got {self.length_buckets}")
        for key in ("query_max_len", "passage_max_len"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be >= 1, got {getattr(self, key)}")

    @property
    def train_files(self) -> list:
        if self.train_path is None:
            return []
        return [self.train_path] if isinstance(self.train_path, str) else list(self.train_path)


EMBEDDING_LOSSES = ("infonce", "kl_distill")
RANKING_LOSSES = ("bce", "mse", "ranknet", "listwise_ce", "listnet", "listmle", "lambda", "kl_distill")
PE_RANK_LOSSES = ("align", "listmle", "contextual_listmle", "kl")
KIND_LOSSES = {"embedding": EMBEDDING_LOSSES, "reranker": RANKING_LOSSES, "colbert": EMBEDDING_LOSSES,
               "llm_reranker": RANKING_LOSSES, "pe_rank": PE_RANK_LOSSES}  # loss.name choices per trainer kind


@dataclass
class LossArgs:
    """``loss:`` section: what to optimise."""

    name: str = "infonce"  # one loss, or several joined with '+' (summed, each logged)
    temperature: Optional[float] = None  # student score temperature; None: 0.02 (embedding), 1.0 (rerankers)
    cross_device_negatives: bool = True  # gather passages from every process as extra negatives
    in_batch_negatives: bool = True  # False: each query sees only its own group
    matryoshka_dims: Optional[list] = None  # e.g. [384, 256, 128]; None = no Matryoshka
    matryoshka_weights: Optional[list] = None  # one per dim; default all 1
    teacher_temperature: float = 1.0  # teacher scores are divided by this before the softmax
    kl_weight: float = 1.0  # weight of kl_distill in infonce+kl_distill (and of kl in PE-Rank's sum)
    weights: Optional[dict] = None  # PE-Rank: a weight per part, e.g. {contextual_listmle: 1.0, kl: 0.2}

    def __post_init__(self):
        if (self.temperature is not None and self.temperature <= 0) or self.teacher_temperature <= 0:
            raise ConfigError("loss.temperature and loss.teacher_temperature must be > 0")
        if self.matryoshka_weights is not None:
            if not self.matryoshka_dims or len(self.matryoshka_weights) != len(self.matryoshka_dims):
                raise ConfigError("loss.matryoshka_weights needs one weight per entry of loss.matryoshka_dims")
        if self.matryoshka_dims is not None:
            if not self.matryoshka_dims or any(int(d) <= 0 for d in self.matryoshka_dims):
                raise ConfigError(f"loss.matryoshka_dims must be positive ints, got {self.matryoshka_dims}")

    @property
    def needs_teacher_scores(self) -> bool:
        return "kl_distill" in self.name


@dataclass
class EvalArgs:
    """``eval:`` section: ranking metrics during and after training (see rag_retrieval.eval)."""

    rerank_path: Optional[str] = None  # {"query","pos","neg"} JSONL: rank pos among pos+neg
    corpus_path: Optional[str] = None  # retrieval eval: {"id","text"} JSONL
    queries_path: Optional[str] = None  # retrieval eval: {"qid","query","pos_ids"} JSONL
    max_queries: Optional[int] = None  # first N queries only
    k_values: list = field(default_factory=lambda: [1, 5, 10, 100])
    batch_size: int = 128
    max_length: Optional[int] = None  # truncation length for evaluation; None: the model's (data.*_max_len)
    before_training: bool = True  # evaluate the starting model too, and print a before/after table
    bf16: bool = False  # score under bf16 autocast (LLM rerankers on CPU with bf16 units: ~3x faster)

    def __post_init__(self):
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"eval.max_length must be >= 1, got {self.max_length}")
        if (self.corpus_path is None) != (self.queries_path is None):
            raise ConfigError("eval.corpus_path and eval.queries_path go together (retrieval evaluation)")

    @property
    def enabled(self) -> bool:
        return self.rerank_path is not None or self.corpus_path is not None


def _training_arguments_cls():
    from .train.args import RetrievalTrainingArguments

    return RetrievalTrainingArguments


# The Trainer's own defaults that make no sense for retrieval training are changed here, once.
TRAIN_DEFAULTS = {
    "output_dir": "outputs/run",
    "remove_unused_columns": False,  # our collators own the columns
    "report_to": "none",
    "dataloader_drop_last": True,  # in-batch negatives and all-gather want equal batches
    "logging_steps": 10,
}


@dataclass
class Config:
    model: ModelArgs
    data: DataArgs
    loss: LossArgs
    train: Any  # RetrievalTrainingArguments (transformers.TrainingArguments + run-safety keys)
    eval: EvalArgs
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


def load_config(argv: Optional[Sequence[str]] = None, loss_choices: Sequence[str] = EMBEDDING_LOSSES) -> Config:
    """Parse ``--config FILE`` plus ``key=value`` overrides into a :class:`Config`.

    Args:
        argv: command-line words (``sys.argv[1:]`` when None).
        loss_choices: the ``loss.name`` values the calling trainer kind supports.

    Returns:
        Config with typed sections; ``train`` is a ``transformers.TrainingArguments``.

    Raises:
        ConfigError: missing file, YAML error, unknown section or key, or an invalid value;
            the message names the file and key and lists the valid choices.

    Example:
        >>> cfg = load_config(["--config", "configs/tests/embedding_tiny.yaml", "loss.temperature=0.05"])
        >>> cfg.loss.temperature
        0.05
    """
    path, overrides = parse_args(argv)
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

    model = _build(ModelArgs, "model", raw.get("model") or {}, path)
    data = _build(DataArgs, "data", raw.get("data") or {}, path)
    loss = _build(LossArgs, "loss", raw.get("loss") or {}, path)
    if any(part not in loss_choices for part in loss.name.split("+")):
        raise ConfigError(f"{path}: loss.name={loss.name!r} is not valid here; choose one of: "
                          f"{', '.join(loss_choices)} (or several joined with '+')")
    evaluation = _build(EvalArgs, "eval", raw.get("eval") or {}, path)
    train_values = {**TRAIN_DEFAULTS, **(raw.get("train") or {})}
    if train_values.get("bf16") == "auto":
        train_values["bf16"] = bf16_supported(bool(train_values.get("use_cpu")))
    train = _build(_training_arguments_cls(), "train", train_values, path)
    _check_paths(path, data, evaluation)
    raw["train"] = train_values
    return Config(model=model, data=data, loss=loss, train=train, eval=evaluation, source=path, raw=raw)


def bf16_supported(use_cpu: bool) -> bool:
    """Whether bf16 autocast speeds training up here (``train.bf16: auto``).

    On a GPU: bf16 support (Ampere and newer). On CPU: bf16 matrix instructions (``avx512_bf16`` or
    AMX), which make bf16 matmuls several times faster than fp32; without them bf16 runs emulated,
    many times slower than fp32.

    >>> isinstance(bf16_supported(use_cpu=True), bool)
    True
    """
    import torch

    if not use_cpu and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
