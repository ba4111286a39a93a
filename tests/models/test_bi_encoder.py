import json

import pytest
import torch

from rag_retrieval.models import BiEncoder
from rag_retrieval.models.bi_encoder import read_sentence_transformers_config

TEXTS = ["Firefox is a free web browser.", "GNU Compiler Collection for C and C++.", "A tool to resize images"]


@pytest.fixture(scope="module")
def minilm():
    return BiEncoder.from_pretrained("minilm")


def test_minilm_loads_its_sentence_transformers_settings(minilm):
    assert minilm.pooling == "mean" and minilm.normalize and minilm.passage_max_len == 256


def test_saved_model_loads_in_sentence_transformers_with_same_embeddings(minilm, tmp_path):
    from sentence_transformers import SentenceTransformer

    minilm.query_instruction, minilm.passage_instruction = "query: ", "passage: "
    minilm.matryoshka_dims = [384, 128]
    minilm.save_pretrained(str(tmp_path))
    cfg = json.load(open(tmp_path / "config_sentence_transformers.json"))
    assert cfg["matryoshka_dims"] == [384, 128] and cfg["prompts"]["query"] == "query: "

    st = SentenceTransformer(str(tmp_path), device="cpu")
    ours_q = minilm.encode_queries(TEXTS)
    ours_p = minilm.encode_passages(TEXTS)
    theirs_q = torch.tensor(st.encode(TEXTS, prompt_name="query"))
    theirs_p = torch.tensor(st.encode(TEXTS, prompt_name="document"))
    assert torch.allclose(ours_q, theirs_q, atol=1e-5) and torch.allclose(ours_p, theirs_p, atol=1e-5)

    st_128 = SentenceTransformer(str(tmp_path), device="cpu", truncate_dim=cfg["matryoshka_dims"][-1])
    theirs = torch.nn.functional.normalize(torch.tensor(st_128.encode(TEXTS, prompt_name="document")), dim=-1)
    assert torch.allclose(minilm.encode_passages(TEXTS, dim=128), theirs, atol=1e-5)

    again = BiEncoder.from_pretrained(str(tmp_path))
    assert again.query_instruction == "query: " and again.matryoshka_dims == [384, 128]
    assert torch.allclose(again.encode_queries(TEXTS), ours_q, atol=1e-6)


@pytest.mark.parametrize("pooling", ["cls", "last_token"])
def test_other_poolings_round_trip_through_sentence_transformers(pooling, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = BiEncoder.from_pretrained("tiny-bert", pooling=pooling, normalize=False)
    model.save_pretrained(str(tmp_path))
    assert read_sentence_transformers_config(str(tmp_path))["pooling"] == pooling
    st = SentenceTransformer(str(tmp_path), device="cpu")
    assert torch.allclose(model.encode_passages(TEXTS), torch.tensor(st.encode(TEXTS)), atol=1e-5)


def test_last_token_pooling_is_padding_side_safe():
    model = BiEncoder.from_pretrained("tiny-bert", pooling="last_token")
    texts = ["short", "a much longer text with many more tokens in it"]
    right = model.encode(texts)
    model.tokenizer.padding_side = "left"
    left = model.encode(texts)
    # BERT has absolute positions, so compare each text alone (no padding) with its padded batch result
    alone = torch.cat([model.encode([t]) for t in texts])
    assert torch.allclose(right, alone, atol=1e-5)
    assert left.shape == right.shape


def test_lora_wraps_trains_saves_and_merges(tmp_path):
    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["query", "value"]}
    model = BiEncoder.from_pretrained("tiny-bert", lora=lora)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(0.1)  # a non-zero adapter
    before = model.encode_passages(TEXTS)
    model.save_pretrained(str(tmp_path / "ckpt"))  # checkpoint: adapter only
    assert (tmp_path / "ckpt" / "adapter_model.safetensors").exists()
    fresh = BiEncoder.from_pretrained("tiny-bert", lora=lora)
    fresh.load_weights(str(tmp_path / "ckpt"))
    assert torch.allclose(fresh.encode_passages(TEXTS), before, atol=1e-6)
    model.save_pretrained(str(tmp_path / "final"), merge_lora=True)
    merged = BiEncoder.from_pretrained(str(tmp_path / "final"))
    assert torch.allclose(merged.encode_passages(TEXTS), before, atol=1e-5)
