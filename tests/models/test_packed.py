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
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_logits_equal_forward(config_cls, attention):
    model, tokenizer = _random(config_cls)
    features = _batch(tokenizer)
    assert features["attention_mask"].sum(1).unique().numel() > 2  # rows of different lengths, padded
    with torch.inference_mode():
        got = packed_logits(model, **features)
        model.set_attn_implementation(attention)  # the reference: the model's own attention code
        expected = model(**features).logits.view(-1)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_minilm_compute_score_is_packed_and_equal(monkeypatch):
    import rag_retrieval.models.cross_encoder as cross_encoder

    torch.manual_seed(0)
    ce = CrossEncoder.from_pretrained("minilm", max_length=64)
    assert supports_packed(ce.model)
    calls = []
    monkeypatch.setattr(cross_encoder, "packed_logits", lambda *a, **k: calls.append(1) or packed_logits(*a, **k))
    pairs = list(zip(QUERIES, DOCS)) * 3
    packed = ce.compute_score(pairs, batch_size=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 serving takes the same path
        packed_bf16 = ce.compute_score(pairs, batch_size=5)
    assert len(calls) == 6
    monkeypatch.setattr(cross_encoder, "packed_logits", lambda *a, **k: None)
    assert packed == pytest.approx(ce.compute_score(pairs, batch_size=5), abs=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain_bf16 = ce.compute_score(pairs, batch_size=5)
    assert packed_bf16 == pytest.approx(plain_bf16, abs=2e-2)  # bf16 rounding differs with the row layout
    assert packed_bf16 != pytest.approx(packed, abs=1e-6)  # autocast did apply


def test_lora_wrapped_model_is_packed():
    ce = CrossEncoder.from_pretrained("tiny-bert", lora={"r": 4, "target_modules": ["query", "value", "dense"]})
    torch.manual_seed(0)
    for name, param in ce.model.named_parameters():
        if "lora_B" in name:  # every adapter (query, value, dense layers, the last layer's too) changes the output
            torch.nn.init.normal_(param)
    features = ce.tokenize(QUERIES, DOCS)
    ce.eval()
    with torch.inference_mode():
        torch.testing.assert_close(packed_logits(ce.model, **features), ce(**features)["scores"], atol=1e-6, rtol=1e-5)


def test_unsupported_cases_fall_back():
    from peft import PromptTuningConfig, get_peft_model
    from transformers import BertForSequenceClassification

    model, tokenizer = _random(BertConfig)
    features = _batch(tokenizer)
    assert packed_logits(model.train(), **features) is None  # training keeps the model's forward
    tokenizer.padding_side = "left"
    assert packed_logits(model.eval(), **_batch(tokenizer)) is None  # [CLS] not first

    class Custom(BertForSequenceClassification):  # a subclass (or remote code of the same name) may change the math
        pass

    assert not supports_packed(Custom(model.config))
    prompt = get_peft_model(model, PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=2))
    assert not supports_packed(prompt)  # virtual tokens come from the peft wrapper's forward
    assert not supports_packed(CrossEncoder.from_pretrained("tiny-qwen2").model)


@pytest.mark.parametrize("config_cls", [BertConfig, RobertaConfig, XLMRobertaConfig])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_packed_embeddings_equal_pooled_forward(config_cls, pooling):
    from transformers import AutoModel

    from rag_retrieval.models.packed import packed_embeddings, supports_packed_encoder
    from rag_retrieval.models.pooling import pool

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    config = config_cls(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=80, pad_token_id=tokenizer.pad_token_id)
    model = AutoModel.from_config(config).eval()
    assert supports_packed_encoder(model)
    features = tokenizer(DOCS + QUERIES, padding=True, truncation=True, max_length=40, return_tensors="pt")
    with torch.inference_mode():
        got = packed_embeddings(model, **features, pooling=pooling)
        expected = pool(model(**features).last_hidden_state, features["attention_mask"], pooling)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert packed_embeddings(model, **features, pooling="last_token") is None
    assert packed_embeddings(model.train(), **features, pooling=pooling) is None


def test_minilm_encode_is_packed_and_equal(monkeypatch):
    import rag_retrieval.models.bi_encoder as bi_encoder
    from rag_retrieval.models import BiEncoder
    from rag_retrieval.models.packed import packed_embeddings

    model = BiEncoder.from_pretrained("minilm")
    texts = DOCS * 3 + QUERIES
    calls = []
    monkeypatch.setattr(bi_encoder, "packed_embeddings", lambda *a, **k: calls.append(1) or packed_embeddings(*a, **k))
    packed = model.encode(texts, batch_size=4)
    capped = model.encode(texts, batch_size=64, max_tokens=40)  # token-capped batches: same vectors
    assert len(calls) > 3
    monkeypatch.setattr(bi_encoder, "packed_embeddings", lambda *a, **k: None)
    plain = model.encode(texts, batch_size=4)
    one_by_one = torch.cat([model.encode([t]) for t in texts])
    torch.testing.assert_close(packed, plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(capped, one_by_one, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.encode(texts, dim=128, batch_size=4), plain[:, :128] / plain[:, :128].norm(
        dim=-1, keepdim=True), atol=1e-5, rtol=0)


def test_colbert_encode_is_packed_and_equal(monkeypatch):
    import rag_retrieval.models.colbert as colbert
    from rag_retrieval.models import ColBERT

    torch.manual_seed(0)
    model = ColBERT.from_pretrained("minilm", dim=16)
    texts = DOCS * 2 + QUERIES
    calls = []
    real = colbert.packed_token_states
    monkeypatch.setattr(colbert, "packed_token_states", lambda *a, **k: calls.append(1) or real(*a, **k))
    packed = [model.encode(texts, is_query) for is_query in (True, False)]
    assert len(calls) == 2
    monkeypatch.setattr(colbert, "packed_token_states", lambda *a, **k: None)
    for got, is_query in zip(packed, (True, False)):
        for a, b in zip(got, model.encode(texts, is_query)):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
