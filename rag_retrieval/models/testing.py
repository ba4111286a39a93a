"""Tiny random models for tests, doctests and smoke runs, built in about a second with no download.

:func:`~rag_retrieval.models.hub.resolve_model_path` builds them once into its cache under the
names ``tiny-bert`` and ``tiny-qwen2`` (naming the builders here by string, as this module imports
hub). A builder's output must not change unless hub's ``TINY_VERSION`` is bumped: caches would
otherwise keep the old model.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from .hub import resolve_model_path

# text the tiny BPE vocabulary is learnt from: the LLM reranker prompt and words the tests use
TINY_CORPUS = [
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
    "providing a prediction of either 'Yes' or 'No'.",
    "A: what is a web browser\nB: Firefox is a free and open source web browser.\nYes",
    "A: resize photos\nB: GCC is the GNU compiler collection for C and C++.\nNo",
    "A command-line tool to resize, crop and convert images. lorem ipsum dolor sit amet",
]


def build_tiny_bert(path: str) -> None:
    """A 2-layer, hidden-32 random BERT with the MiniLM tokenizer (tests and smoke runs).

    No dropout, so runs that differ only in batching (accumulation, processes) can match exactly.
    """
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_model_path("minilm")).save_pretrained(path)


def tiny_bpe_tokenizer() -> Tokenizer:
    """A byte-level BPE backend (any text encodes) with a few hundred tokens, learnt in milliseconds.

    Special tokens: ``<|endoftext|>`` (Qwen-style eos/pad), ``<s>``, ``</s>``, ``<unk>`` (Llama-style).

    >>> bpe = tiny_bpe_tokenizer()
    >>> bpe.decode(bpe.encode("a web browser").ids)
    'a web browser'
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(TINY_CORPUS * 4, trainer)
    return backend


def build_tiny_qwen2(path: str) -> None:
    """A 2-layer, hidden-32 random Qwen2 causal LM with a tiny BPE tokenizer (LLM reranker tests).

    Like Qwen2: no bos token, ``<|endoftext|>`` is eos and pad, left padding.
    """
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tiny_bpe_tokenizer(), eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", padding_side="left")
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
