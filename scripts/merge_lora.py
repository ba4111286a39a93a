#!/usr/bin/env python
"""Merge a LoRA adapter saved by a training run (``model.use_lora: true``, ``model.merge_lora: false``)
into its base model and save a plain checkpoint with the same settings (prompts, lengths, head).

    python scripts/merge_lora.py --adapter outputs/llm_reranker/x --output outputs/llm_reranker/x_merged

Works for the model kinds that record themselves in rag_retrieval.json: llm, llm-layerwise and
cross-encoder. The merged folder loads in ``rag_retrieval.Reranker`` (and plain transformers) and
scores as the adapter did. The output folder is never replaced unless --overwrite is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", required=True, help="folder with adapter_config.json and rag_retrieval.json")
    parser.add_argument("--output", required=True)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    from rag_retrieval.models import CrossEncoder, LLMReranker
    from rag_retrieval.models.weights import adapter_base, read_settings

    kinds = {"llm": LLMReranker, "llm-layerwise": LLMReranker, "cross-encoder": CrossEncoder}
    kind = read_settings(args.adapter).get("kind")
    if adapter_base(args.adapter) is None:
        sys.exit(f"error: {args.adapter} holds no LoRA adapter (adapter_config.json without config.json)")
    if kind not in kinds:
        sys.exit(f"error: {args.adapter}: model kind {kind!r} is not supported; supported: {', '.join(kinds)}")
    if os.path.abspath(args.output) == os.path.abspath(args.adapter):
        sys.exit("error: --output must differ from --adapter")
    if os.path.exists(args.output) and not args.overwrite:
        sys.exit(f"error: {args.output} exists; pass --overwrite to replace it")
    model = kinds[kind].from_pretrained(args.adapter)
    tmp = args.output.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, merge_lora=True)
    if os.path.exists(args.output):
        shutil.rmtree(args.output)
    os.replace(tmp, args.output)  # a half-written merge never sits at --output
    print(f"merged {args.adapter} into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
