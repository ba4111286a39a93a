"""``rag-retrieval train <kind> --config FILE [section.key=value ...]``: the kind's entry point, and
help that lists the kinds, a kind's config sections and its shipped configs."""

from __future__ import annotations

import dataclasses
import glob
import importlib
import os
import sys
import textwrap

from .. import kinds

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
USAGE = "usage: rag-retrieval train <kind> --config FILE [section.key=value ...]"


def kinds_help() -> str:
    width = max(len(k.name) for k in kinds.KINDS.values())
    rows = [f"  {k.name:<{width}}  {k.summary}" + (f" (also: {', '.join(a.replace('_', '-') for a in k.aliases)})"
                                                   if k.aliases else "") for k in kinds.KINDS.values()]
    return "\n".join([USAGE, "", "Fine-tune a model of one kind from a YAML config; section.key=value words override "
                      "it.", "", "kinds:", *rows, "", "rag-retrieval train <kind> --help lists its config keys and "
                      "shipped configs.", "", "examples:",
                      "  rag-retrieval train embedding --config configs/embedding/minilm_pkgdesc_cpu.yaml",
                      "  rag-retrieval train reranker --config configs/reranker/minilm_pkgdesc_cpu.yaml "
                      "train.max_steps=100"])


def config_folder(kind: kinds.Kind) -> str:
    """``configs/<folder>`` of a kind: its entry module's name (the layerwise kind shares llm_reranker's)."""
    return kind.entry.rsplit(".", 1)[1]


def shipped_configs(kind: kinds.Kind) -> list:
    """(path relative to the repository, first sentence of its opening comment) of each shipped config."""
    out = []
    for path in sorted(glob.glob(os.path.join(CONFIGS, config_folder(kind), "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            head = []
            for line in f:
                if not line.startswith("#") or line.startswith(("# Launch:", "# Override:")):
                    break
                head.append(line[1:].strip())
        text = " ".join(head)
        first = text.split(". ")[0].split(": ")[0]
        out.append((os.path.relpath(path, os.path.dirname(CONFIGS)), textwrap.shorten(first, 72, placeholder=" ...")))
    return out


def kind_help(kind: kinds.Kind) -> str:
    from ..config import MODEL_SECTIONS, DataArgs, EvalArgs, LossArgs

    def keys(cls):
        return ", ".join(f.name for f in dataclasses.fields(cls) if f.init)

    def wrapped(label, text):
        return textwrap.fill(text, 100, initial_indent=f"  {label:<6} ", subsequent_indent=" " * 9)

    configs = shipped_configs(kind)
    width = max([len(p) for p, _ in configs] + [0])
    lines = [USAGE.replace("<kind>", kind.name), "", f"Train a {kind.summary}.",
             f"Names: {', '.join([kind.name, *[a.replace('_', '-') for a in kind.aliases]])}; saved as kind "
             f"'{kind.saved}'.", "", "config sections (YAML, or section.key=value on the command line):",
             wrapped("model", keys(MODEL_SECTIONS[kind.name])), wrapped("data", keys(DataArgs)),
             wrapped("loss", f"name: {' | '.join(kind.losses)} (several joined with '+'; default {kind.default_loss}); "
                             + keys(LossArgs).replace("name, ", "")),
             wrapped("train", "transformers.TrainingArguments (output_dir, learning_rate, per_device_train_batch_size, "
                              "max_steps, bf16: true | false | auto, deepspeed, ...) and overwrite_output_dir, "
                              "head_learning_rate, nonfinite_loss"),
             wrapped("eval", keys(EvalArgs)), ""]
    if configs:
        lines += ["shipped configs:", *[f"  {p:<{width}}  {what}" for p, what in configs]]
    else:
        lines += [f"shipped configs: none found (they live in the repository's configs/{config_folder(kind)}/)"]
    cpu = [p for p, _ in configs if "_cpu" in p]
    example = (cpu or [p for p, _ in configs] or [f"configs/{config_folder(kind)}/x.yaml"])[0]
    lines += ["", "examples:", f"  rag-retrieval train {kind.name} --config {example}",
              f"  rag-retrieval train {kind.name} --config {example} train.output_dir=outputs/mine train.max_steps=50",
              "", "Everything is checked before a model loads; docs/config.md describes every key."]
    return "\n".join(lines)


def train_main(argv) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(kinds_help())
        return 0
    kind = kinds.get(argv[0])
    if any(a in ("-h", "--help") for a in argv[1:]):
        print(kind_help(kind))
        return 0
    if "--config" not in argv[1:] and not any(a.startswith("--config=") for a in argv[1:]):
        print(USAGE.replace("<kind>", kind.name) + f"\nerror: --config FILE is missing; rag-retrieval train "
              f"{kind.name} --help lists the shipped configs", file=sys.stderr)
        return 2
    importlib.import_module(kind.entry).main(argv[1:], kind=kind.name)
    return 0
