"""ColBERT: MaxSim, tokenisation (markers, [MASK] augmentation, punctuation), saving and loading, training."""

import json
import os

import pytest
import torch
import torch.nn.functional as F

from rag_retrieval.models import ColBERT
from rag_retrieval.models.pooling import maxsim

QUERIES = ["open source web browser", "text editor"]
DOCS = ["A fast, small web browser for the desktop.", "A text editor with syntax highlighting!", "Compiler."]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ColBERT.from_pretrained("tiny-bert", dim=8, query_max_len=12, passage_max_len=24)


def test_maxsim_hand_computed_with_masks():
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]])  # the third query token is masked
    p = torch.tensor([[[0.8, 0.6], [-1.0, 0.0], [0.0, 9.0]],  # the third passage token is masked
                      [[-1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]])  # every token counts; all dots <= 0
    q_mask = torch.tensor([[1, 1, 0]])
    p_mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # passage 0: token 1 -> max(0.8, -1.0) = 0.8; token 2 -> max(0.6, 0.0) = 0.6 (9.0 masked)
    # passage 1: token 1 -> max(-1, 0, 0) = 0; token 2 -> max(0, -1, 0) = 0
    expected = torch.tensor([[0.8 + 0.6, 0.0]])
    assert torch.allclose(maxsim(q, p, q_mask, p_mask), expected)
    assert torch.allclose(maxsim(q, p, q_mask, p_mask, normalize_by_query_len=True), expected / 2)
    # a passage with no counted token scores 0; unmasked inputs use every token
    assert maxsim(q, p[:1], q_mask, torch.zeros(1, 3)).item() == 0
    assert torch.allclose(maxsim(q, p[:1]), torch.tensor([[0.8 + 9.0 + 4.5]]))


def test_tokenisation_markers_augmentation_punctuation(model):
    tok = model.tokenizer
    q = model.tokenize_queries(QUERIES)
    assert q["input_ids"].shape == (2, 12)  # augmented to query_max_len
    assert (q["input_ids"][:, 1] == tok.convert_tokens_to_ids("[unused0]")).all()
    n = len(tok(QUERIES[1])["input_ids"]) + 1  # + marker
    assert (q["input_ids"][1, n:] == tok.mask_token_id).all()
    assert q["attention_mask"][1].tolist() == [1] * n + [0] * (12 - n)  # nothing attends to [MASK] fillers
    assert q["score_mask"].all()  # ... but their vectors count
    p = model.tokenize_passages(DOCS)
    assert (p["input_ids"][:, 1] == tok.convert_tokens_to_ids("[unused1]")).all()
    punct = torch.isin(p["input_ids"], torch.tensor([tok.convert_tokens_to_ids(c) for c in ",.!"]))
    assert punct.any() and not p["score_mask"][punct].any()
    assert (p["score_mask"] <= p["attention_mask"]).all()  # padding never counts
    assert p["input_ids"].shape[1] <= 24


def test_scores_equal_between_training_forward_and_inference(model):
    q, p = model.tokenize_queries(QUERIES), model.tokenize_passages(DOCS)
    model.eval()
    with torch.no_grad():
        out = model(query=q, passage=p)
        train_scores = model.score_fn(out["q_reps"], out["p_reps"])
    assert torch.allclose(train_scores, model.score(QUERIES, DOCS), atol=1e-5)
    pairs = [(qq, d) for qq in QUERIES for d in DOCS]
    assert torch.allclose(torch.tensor(model.compute_score(pairs)), train_scores.flatten(), atol=1e-5)


def test_save_load_round_trip_gives_identical_scores(model, tmp_path):
    from rag_retrieval import Reranker

    model.save_pretrained(str(tmp_path))
    assert json.load(open(tmp_path / "rag_retrieval.json"))["kind"] == "colbert"
    assert torch.load(tmp_path / "colbert_linear.pt")["weight"].shape == (8, model.config.hidden_size)
    loaded = ColBERT.from_pretrained(str(tmp_path))
    assert loaded.dim == 8 and loaded.query_max_len == 12 and loaded.new_modules == ()
    assert torch.equal(loaded.score(QUERIES, DOCS), model.score(QUERIES, DOCS))
    ranker = Reranker(str(tmp_path), device="cpu")  # type detected from rag_retrieval.json
    pairs = [(q, d) for q in QUERIES for d in DOCS]
    assert ranker.compute_score(pairs) == model.compute_score(pairs)
    res = ranker.rerank(QUERIES[0], DOCS + ["web browser " * 40], long_doc="max_chunk", chunk_overlap=2)
    assert sorted(res.ids) == [0, 1, 2, 3]


def test_reads_bge_m3_layout(tmp_path):
    """A folder with colbert_linear.pt (with bias) and no rag_retrieval.json scores as bge-m3 does."""
    from transformers import AutoModel, AutoTokenizer

    from rag_retrieval.models.hub import resolve_model_path

    base = resolve_model_path("tiny-bert")
    enc, tok = AutoModel.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    enc.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    torch.manual_seed(1)
    linear = torch.nn.Linear(enc.config.hidden_size, enc.config.hidden_size)
    torch.save(linear.state_dict(), tmp_path / "colbert_linear.pt")
    model = ColBERT.from_pretrained(str(tmp_path))
    assert model.query_marker is None and model.skip_first_token and model.normalize_by_query_len

    def bge_m3_vecs(text):  # BGEM3 colbert_embedding: drop [CLS], project, normalise
        f = tok(text, return_tensors="pt")
        with torch.no_grad():
            h = enc(**f).last_hidden_state
            return F.normalize(linear(h[:, 1:]), dim=-1)[0]

    q, d = bge_m3_vecs(QUERIES[0]), bge_m3_vecs(DOCS[0])
    expected = (q @ d.T).max(-1).values.sum() / q.shape[0]  # BGEM3 colbert_score
    assert torch.allclose(torch.tensor(model.compute_score([(QUERIES[0], DOCS[0])])), expected, atol=1e-5)


def test_training_recipe_runs_and_saves(tmp_path):
    from rag_retrieval.train.colbert import main

    results = main(["--config", "configs/tests/colbert_tiny.yaml", f"train.output_dir={tmp_path}"])
    assert set(results) == {"before", "after"}
    assert os.path.isfile(tmp_path / "colbert_linear.pt") and os.path.isfile(tmp_path / "model.safetensors")
    from rag_retrieval import Reranker

    assert type(Reranker(str(tmp_path), device="cpu")).__name__ == "ColBERTRanker"


@pytest.mark.slow
def test_torchrun_two_processes_and_resume(tmp_path):
    from safetensors.torch import load_file

    from rag_retrieval.train.colbert import main
    from tests.conftest import tiny_args, torchrun

    cfg = "configs/tests/colbert_tiny.yaml"
    out = torchrun("rag_retrieval.train.colbert", tiny_args(tmp_path / "ddp", "train.per_device_train_batch_size=2",
                                                            config=cfg), port_base=27600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "ddp" / "colbert_linear.pt").exists() and "| after |" in out.stdout
    # kill-free resume: restarting from the middle checkpoint of an identical run gives the same weights
    common = ["eval.rerank_path=null", "train.max_steps=6", "train.save_strategy=steps", "train.save_steps=3",
              "train.per_device_train_batch_size=2", "train.num_train_epochs=3"]
    main(tiny_args(tmp_path / "full", *common, config=cfg))
    main(tiny_args(tmp_path / "part", *common, config=cfg))
    main(tiny_args(tmp_path / "part", *common, "train.overwrite_output_dir=true",
                   "train.resume_from_checkpoint=" + str(tmp_path / "part" / "checkpoint-3"), config=cfg))
    for name in ("model.safetensors", "colbert_linear.pt"):
        load = load_file if name.endswith("safetensors") else torch.load
        a, b = load(tmp_path / "full" / name), load(tmp_path / "part" / name)
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


def test_distillation_from_teacher_scores_uses_maxsim(tmp_path):
    from rag_retrieval.train.colbert import main

    results = main(["--config", "configs/tests/colbert_tiny.yaml", f"train.output_dir={tmp_path}",
                    "data.train_path=data/example/train_scores.jsonl", "loss.name=infonce+kl_distill",
                    "eval.before_training=false"])
    assert results["after"]["rerank_mrr@10"] > 0
    assert json.load(open(tmp_path / "rag_retrieval.json"))["kind"] == "colbert"


def test_kl_distill_scores_groups_by_maxsim():
    from rag_retrieval.losses import KLDistillLoss
    from rag_retrieval.models.colbert import packed_maxsim

    torch.manual_seed(0)
    q = torch.cat([F.normalize(torch.randn(2, 3, 4), dim=-1), torch.ones(2, 3, 1)], -1)
    p = torch.cat([F.normalize(torch.randn(4, 5, 4), dim=-1), torch.ones(4, 5, 1)], -1)
    teacher = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    loss = KLDistillLoss(score_fn=packed_maxsim)(q_reps=q, p_reps=p, teacher_scores=teacher)
    student = torch.stack([packed_maxsim(q[i : i + 1], p[2 * i : 2 * i + 2])[0] for i in range(2)])  # (B, G)
    expected = F.kl_div(F.log_softmax(student, -1), F.softmax(teacher, -1), reduction="batchmean")
    assert torch.allclose(loss, expected, atol=1e-6)
