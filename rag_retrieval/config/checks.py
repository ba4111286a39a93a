"""Every config value against its field's type and range, before anything loads.

The type is the dataclass field's annotation (ours, and ``TrainingArguments``' for ``train:``);
ranges are in :data:`RANGES`. A mistake is one line naming the key, what was expected, what was
given and where it came from: ``train.learning_rate: expected a number, got 'abc' (command line)``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from typing import Any, Optional, Union

from ..errors import ConfigError

# (what the value must be, the test); None passes every range (a field left unset)
AT_LEAST_1 = ("at least 1", lambda v: v >= 1)
AT_LEAST_0 = ("at least 0", lambda v: v >= 0)
ABOVE_0 = ("greater than 0", lambda v: v > 0)
FRACTION = ("in [0, 1)", lambda v: 0 <= v < 1)
STEPS = ("-1 (train for num_train_epochs) or at least 1", lambda v: v == -1 or v >= 1)
RANGES = {
    "data.group_size": AT_LEAST_1, "data.query_max_len": AT_LEAST_1, "data.passage_max_len": AT_LEAST_1,
    "data.length_buckets": AT_LEAST_1, "data.max_examples": AT_LEAST_1, "data.dataloader_seed": AT_LEAST_0,
    "loss.temperature": ABOVE_0, "loss.teacher_temperature": ABOVE_0, "loss.kl_weight": AT_LEAST_0,
    "loss.matryoshka_dims": AT_LEAST_1, "loss.matryoshka_weights": AT_LEAST_0,
    "eval.max_queries": AT_LEAST_1, "eval.k_values": AT_LEAST_1, "eval.batch_size": AT_LEAST_1,
    "eval.max_length": AT_LEAST_1,
    "model.lora_r": AT_LEAST_1, "model.lora_alpha": ABOVE_0, "model.lora_dropout": FRACTION, "model.dim": AT_LEAST_1,
    "model.cutoff_layers": AT_LEAST_1, "model.projector_hidden": AT_LEAST_1, "model.window_size": AT_LEAST_1,
    "model.window_step": AT_LEAST_1, "model.context_max_len": AT_LEAST_1,
    "train.per_device_train_batch_size": AT_LEAST_1, "train.per_device_eval_batch_size": AT_LEAST_1,
    "train.gradient_accumulation_steps": AT_LEAST_1, "train.learning_rate": AT_LEAST_0,
    "train.head_learning_rate": AT_LEAST_0, "train.weight_decay": AT_LEAST_0, "train.max_grad_norm": AT_LEAST_0,
    "train.num_train_epochs": ABOVE_0, "train.max_steps": STEPS, "train.warmup_steps": AT_LEAST_0,
    "train.logging_steps": ABOVE_0, "train.save_steps": ABOVE_0, "train.eval_steps": ABOVE_0,
    "train.save_total_limit": AT_LEAST_1, "train.seed": AT_LEAST_0, "train.dataloader_num_workers": AT_LEAST_0,
}


# annotations narrower than what the field really takes (TrainingArguments' own parsing is wider)
WIDER = {
    "train.fsdp": Union[bool, str, list[str], None],  # true, "full_shard auto_wrap", [full_shard, auto_wrap]
    "train.resume_from_checkpoint": Union[bool, str, None],  # true / last: the newest checkpoint
}


FALSE_MEANS = {"train.report_to": "none"}  # what a bare false (YAML's no) means where null would mean something else


class _Mismatch(Exception):
    pass


def _members(hint) -> tuple:
    return typing.get_args(hint) if _is_union(hint) else (hint,)


def yaml_false(hint, value):
    """YAML reads a bare ``no`` as False: for a field that takes no boolean, False means "no" where
    that is a choice (``save_strategy: no``), else null (``report_to: false``, ``deepspeed: no``).

    >>> yaml_false(Optional[str], False), yaml_false(bool, False)
    (None, False)
    """
    if value is not False or any(m is bool or m is Any for m in _members(hint)):
        return value
    if any(isinstance(m, type) and issubclass(m, enum.Enum) and "no" in {str(x.value) for x in m}
           for m in _members(hint)):
        return "no"
    return None if type(None) in _members(hint) else value


def describe(hint) -> str:
    """What a type annotation asks for, in a user's words.

    >>> describe(Optional[list[int]]), describe(bool), describe(float)
    ('a list of integers, e.g. [1, 10], or null', 'true or false', 'a number')
    """
    args = _union_args(hint) if _is_union(hint) else typing.get_args(hint)
    if _is_union(hint):
        parts = [describe(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(parts)) + (", or null" if type(None) in args else "")
    if typing.get_origin(hint) is typing.Literal:
        return " or ".join(repr(a) if isinstance(a, str) else str(a).lower() for a in args)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of: " + ", ".join(str(m.value) for m in hint)
    origin = typing.get_origin(hint) or hint
    if origin is list:
        item = {int: "integers", float: "numbers", str: "strings"}.get(args[0] if args else None)
        return f"a list of {item}, e.g. {_LIST_EXAMPLE[args[0]]}" if item else "a list, e.g. [a, b]"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            dict: "a mapping, e.g. {key: value}"}.get(origin, getattr(origin, "__name__", str(origin)))


_LIST_EXAMPLE = {int: "[1, 10]", float: "[1.0, 0.5]", str: "[a, b]"}


def _is_union(hint) -> bool:
    return typing.get_origin(hint) is typing.Union or isinstance(hint, types.UnionType)


def _union_args(hint) -> tuple:
    """A union's members; ``SomeEnum | str`` (the Trainer's strategies) is the enum: the string
    there only says a value may be given by name."""
    args = typing.get_args(hint)
    if any(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
        args = tuple(a for a in args if a is not str)
    return args


def convert(value, hint):
    """``value`` as ``hint`` wants it (an integral float for an int, an int for a float), or
    :class:`_Mismatch`. Booleans are strict: only true and false are booleans, and no number is one.

    >>> convert(3.0, int), convert(2, float), convert(None, Optional[int])
    (3, 2.0, None)
    """
    if hint is Any or isinstance(hint, typing.TypeVar):
        return value
    if hint is None or hint is type(None):
        if value is None:
            return None
        raise _Mismatch
    if _is_union(hint):
        if value is None and type(None) in typing.get_args(hint):
            return None
        for arg in sorted(_union_args(hint), key=lambda a: a is str):  # a string is the last resort
            try:
                return convert(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if typing.get_origin(hint) is typing.Literal:
        if value in typing.get_args(hint) and type(value) in {type(a) for a in typing.get_args(hint)}:
            return value
        raise _Mismatch
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = {str(m.value) for m in hint}
        if isinstance(value, hint) or (isinstance(value, str) and value in values):
            return value
        raise _Mismatch
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if isinstance(value, bool):  # True is an int to Python, not to a config
        raise _Mismatch
    if origin is int:
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
        raise _Mismatch
    if origin is float:
        if isinstance(value, (int, float)):
            return float(value)
        raise _Mismatch
    if origin is list:
        if not isinstance(value, list):
            raise _Mismatch
        item = (typing.get_args(hint) or [Any])[0]
        return [convert(v, item) for v in value]
    if origin is dict:
        if isinstance(value, dict):
            return value
        raise _Mismatch
    if origin is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    return value  # a class of the library's own (e.g. accelerate's ParallelismConfig): its own checks


def check_section(cls, section: str, values: dict, where) -> dict:
    """``values`` converted to ``cls``'s field types, ranges checked; ``where(key)`` says where a
    key's value came from.

    Raises:
        ConfigError: ``section.key: expected ..., got ... (where)``.
    """
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        name = f"{section}.{key}"
        hint = WIDER.get(name, hints.get(key, Any))
        value = FALSE_MEANS[name] if value is False and name in FALSE_MEANS else yaml_false(hint, value)
        try:
            value = convert(value, hint)
        except _Mismatch:
            raise ConfigError(f"{name}: expected {describe(hint)}, got {value!r} ({where(key)})") from None
        if name in RANGES and value is not None:
            need, ok = RANGES[name]
            items = value if isinstance(value, list) else [value]
            bad = [v for v in items if isinstance(v, (int, float)) and not ok(v)]
            if bad:
                got = value if not isinstance(value, list) else f"{value} (item {bad[0]!r})"
                raise ConfigError(f"{name}: must be {need}{', every item' if isinstance(value, list) else ''}, "
                                  f"got {got} ({where(key)})")
        out[key] = value
    return out


def field_names(cls) -> list:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def line_of(path: str, section: str, key: str) -> Optional[int]:
    """The line of ``path`` where ``section:`` sets ``key`` directly (block or flow style; a key of
    the same name nested deeper does not count), or None.

    >>> import tempfile
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    >>> _ = f.write(chr(10).join(["train:", "  deepspeed:", "    bf16: true", "  bf16: auto", "model: {dim: 8}"]))
    >>> f.close()
    >>> line_of(f.name, "train", "bf16"), line_of(f.name, "model", "dim"), line_of(f.name, "data", "x")
    (4, 5, None)
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    inside, indent = False, None
    key_at = re.compile(rf"^(\s+){re.escape(key)}\s*:")
    flow = re.compile(rf"[{{,]\s*{re.escape(key)}\s*:")
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0]
        if re.match(rf"{re.escape(section)}\s*:", text):
            inside, indent = True, None
            if flow.search(text.split(":", 1)[1]):
                return number
            continue
        if not inside or not text.strip():
            continue
        if not text[0].isspace():  # the next top-level section
            inside = False
            continue
        spaces = len(text) - len(text.lstrip())
        indent = spaces if indent is None else indent
        match = key_at.match(text)
        if match and len(match.group(1)) == indent:
            return number
    return None
