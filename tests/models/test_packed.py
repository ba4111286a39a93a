"""The packed cross-encoder forward scores exactly like the model's own forward."""

import pytest
import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, BertConfig, RobertaConfig,
                          XLMRobertaConfig)

from rag_retrieval.models import CrossEncoder
from rag_retrieval.models.hub import resolve_model_path
from rag_retrieval.models.packed import packed_logits, supports_packed

QUERIES = ["web browser", "resize photos", "a", "compiler for c and c++ with many optimisation passes"]
DOCS = ["Firefox is a free web browser. " * 6, "A command-line tool to resize images.", "b",
        "GCC is the GNU compiler collection."]


def _batch(tokenizer, max_length=48):
    return tokenizer(QUERIES, DOCS, padding=True, truncation="longest_first", max_length=max_length,
                     return_tensors="pt")


def _random(config_cls, **extra):
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    config = config_cls(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=80, num_labels=1,
                        pad_token_id=tokenizer.pad_token_id, **extra)
    return AutoModelForSequenceClassification.from_config(config).eval(), tokenizer


@pytest.mark.parametrize("config_cls", [BertConfig, RobertaConfig, XLMRobertaConfig])
def test_packed_logits_equal_forward(config_cls):
    model, tokenizer = _random(config_cls)
    features = _batch(tokenizer)
    assert features["attention_mask"].sum(1).unique().numel() > 2  # rows of different lengths, padded
    with torch.inference_mode():
        expected = model(**features).logits.view(-1)
        got = packed_logits(model, **features)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_minilm_compute_score_is_packed_and_equal(monkeypatch):
    torch.manual_seed(0)
    ce = CrossEncoder.from_pretrained("minilm", max_length=64)
    assert supports_packed(ce.model)
    pairs = list(zip(QUERIES, DOCS)) * 3
    packed = ce.compute_score(pairs, batch_size=5)
    monkeypatch.setattr("rag_retrieval.models.cross_encoder.packed_logits", lambda *a, **k: None)
    plain = ce.compute_score(pairs, batch_size=5)
    assert packed == pytest.approx(plain, abs=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 serving takes the same path
        features = ce.tokenize(QUERIES, DOCS)
        with torch.inference_mode():
            close = packed_logits(ce.model.eval(), **features)
    assert close.float() == pytest.approx(plain[:4], abs=0.05)


def test_lora_wrapped_model_is_packed():
    ce = CrossEncoder.from_pretrained("tiny-bert", lora={"r": 4, "target_modules": ["query", "value", "dense"]})
    torch.nn.init.normal_(next(p for n, p in ce.model.named_parameters() if "lora_B" in n))
    features = ce.tokenize(QUERIES, DOCS)
    ce.eval()
    with torch.inference_mode():
        torch.testing.assert_close(packed_logits(ce.model, **features), ce(**features)["scores"], atol=1e-6, rtol=1e-5)


def test_unsupported_cases_fall_back():
    model, tokenizer = _random(BertConfig, position_embedding_type="relative_key")
    assert not supports_packed(model)
    model, tokenizer = _random(BertConfig)
    features = _batch(tokenizer)
    assert packed_logits(model.train(), **features) is None  # training keeps the model's forward
    tokenizer.padding_side = "left"
    assert packed_logits(model.eval(), **_batch(tokenizer)) is None  # [CLS] not first
    assert not supports_packed(CrossEncoder.from_pretrained("tiny-qwen2").model)
