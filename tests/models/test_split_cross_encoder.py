"""The split cross-encoder: all layers separate = the bi-encoder; joint layers read both segments."""

import pytest
import torch

from rag_retrieval import Reranker
from rag_retrieval.models import BiEncoder, CrossEncoder
from rag_retrieval.models.split_cross_encoder import SplitCrossEncoder
from rag_retrieval.train.reranker import main
from tests.conftest import tiny_args

PAIRS = [("what is a web browser", "Firefox is a free web browser."),
         ("what is a web browser", "GCC is the GNU compiler collection for C and C++."),
         ("resize photos", "A command-line tool to resize, crop and convert images and photos.")]


def test_all_layers_separate_scores_as_the_bi_encoder():
    bi = BiEncoder.from_pretrained("minilm")  # mean pooling, normalised: cosine
    split = CrossEncoder.from_pretrained("minilm", separate_layers=6, score_scale=1.0, max_length=128)
    assert isinstance(split, SplitCrossEncoder)
    q = bi.encode_queries([q for q, _ in PAIRS])
    p = bi.encode_passages([d for _, d in PAIRS])
    expected = (torch.as_tensor(q) * torch.as_tensor(p)).sum(-1).tolist()
    assert split.compute_score(PAIRS) == pytest.approx(expected, abs=1e-5)
    assert split.compute_score(PAIRS, batch_size=1) == pytest.approx(expected, abs=1e-5)  # padding changes nothing


def test_joint_layers_see_the_other_segment():
    joint = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, max_length=64)  # layer 2 joint
    apart = CrossEncoder.from_pretrained("tiny-bert", separate_layers=2, max_length=64)  # same weights, all apart
    features = joint.tokenize(["alpha beta"], ["gamma delta"])
    assert features["token_type_ids"][0].tolist().count(0) == len(joint.tokenizer("alpha beta")["input_ids"])
    assert joint.compute_score(PAIRS) != pytest.approx(apart.compute_score(PAIRS), abs=1e-4)


def test_truncation_keeps_the_pair_within_max_length():
    split = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, max_length=16)
    rows = split.tokenize(["a long query " * 20], ["a long passage " * 40], padding=False)
    ids = rows["input_ids"][0]
    assert len(ids) <= 16 and ids[-1] == split.tokenizer.sep_token_id
    assert rows["token_type_ids"][0].count(0) <= 8


def test_trains_saves_and_serves_through_reranker(tmp_path):
    results = main(tiny_args(tmp_path, "model.separate_layers=1", "model.score_scale=10",
                             "eval.before_training=false", config="configs/tests/reranker_tiny.yaml"))
    assert 0 <= results["after"]["rerank_mrr@10"] <= 1
    ranker = Reranker(str(tmp_path))
    model = CrossEncoder.from_pretrained(str(tmp_path))
    assert isinstance(model, SplitCrossEncoder) and model.separate_layers == 1 and model.score_scale == 10
    scores = ranker.compute_score([list(p) for p in PAIRS])
    assert scores == pytest.approx(model.compute_score(PAIRS), abs=1e-5)
    with pytest.raises(ValueError, match="split cross-encoder"):
        CrossEncoder.from_pretrained(str(tmp_path), separate_layers=0)


def test_bad_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="the model has 2 layers"):
        CrossEncoder.from_pretrained("tiny-bert", separate_layers=3)
    from rag_retrieval.config import ConfigError

    with pytest.raises(ConfigError, match="model.separate_layers=-1"):
        main(tiny_args(tmp_path, "model.separate_layers=-1", config="configs/tests/reranker_tiny.yaml"))


def test_joint_gate_starts_as_the_bi_encoder_and_opens_to_the_joint_model():
    apart = CrossEncoder.from_pretrained("tiny-bert", separate_layers=2, max_length=64)
    joint = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, max_length=64)
    gated = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, joint_gate=True, max_length=64)
    assert gated.joint_gate.values.tolist() == [0.0] and gated.new_modules == ("joint_gate",)
    assert gated.compute_score(PAIRS) == pytest.approx(apart.compute_score(PAIRS), abs=1e-5)
    with torch.no_grad():
        gated.joint_gate.values.fill_(1.0)
    assert gated.compute_score(PAIRS) == pytest.approx(joint.compute_score(PAIRS), abs=1e-5)
    with pytest.raises(ValueError, match="joint_gate=True needs a split"):
        CrossEncoder.from_pretrained("tiny-bert", joint_gate=True)


def test_gates_train_with_the_head_rate_save_and_resume(tmp_path):
    main(tiny_args(tmp_path, "model.separate_layers=1", "model.joint_gate=true", "train.head_learning_rate=0.1",
                   "eval.before_training=false", config="configs/tests/reranker_tiny.yaml"))
    model = CrossEncoder.from_pretrained(str(tmp_path))
    gates = model.joint_gate.values.tolist()
    assert len(gates) == 1 and gates[0] != 0.0  # learnt, saved and read back
    fresh = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, joint_gate=True, max_length=model.max_length)
    fresh.load_weights(str(tmp_path))  # what resume and load_best_model_at_end call
    assert fresh.joint_gate.values.tolist() == pytest.approx(gates)
    assert fresh.compute_score(PAIRS) == pytest.approx(model.compute_score(PAIRS), abs=1e-5)
    assert Reranker(str(tmp_path)).compute_score([list(p) for p in PAIRS]) == pytest.approx(
        model.compute_score(PAIRS), abs=1e-5)
    assert CrossEncoder.from_pretrained(str(tmp_path), joint_gate=False).joint_gate is None


def test_joint_gate_needs_a_split(tmp_path):
    from rag_retrieval.config import ConfigError

    with pytest.raises(ConfigError, match="model.joint_gate=true needs model.separate_layers"):
        main(tiny_args(tmp_path, "model.separate_layers=0", "model.joint_gate=true",
                       config="configs/tests/reranker_tiny.yaml"))


def test_joint_head_starts_as_the_bi_encoder_and_adds_the_joint_streams_cosine():
    apart = CrossEncoder.from_pretrained("tiny-bert", separate_layers=2, max_length=64)
    joint = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, max_length=64)
    headed = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, joint_head=True, max_length=64)
    assert headed.joint_head.values.tolist() == [0.0] * 32 and headed.new_modules == ("joint_head",)
    assert headed.compute_score(PAIRS) == pytest.approx(apart.compute_score(PAIRS), abs=1e-5)
    with torch.no_grad():
        headed.joint_head.values.fill_(1.0)  # every dimension weighted 1: the joint stream's cosine
    expected = [a + j for a, j in zip(apart.compute_score(PAIRS), joint.compute_score(PAIRS))]
    assert headed.compute_score(PAIRS) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="joint_head=True needs a split"):
        CrossEncoder.from_pretrained("tiny-bert", joint_head=True)
    with pytest.raises(ValueError, match="give one"):
        SplitCrossEncoder(headed.model, headed.tokenizer, separate_layers=1, joint_gate=[0.0], joint_head=[0.0] * 32)


def test_joint_head_trains_with_the_head_rate_saves_and_resumes(tmp_path):
    main(tiny_args(tmp_path, "model.separate_layers=1", "model.joint_head=true", "train.head_learning_rate=0.1",
                   "eval.before_training=false", config="configs/tests/reranker_tiny.yaml"))
    model = CrossEncoder.from_pretrained(str(tmp_path))
    head = model.joint_head.values.tolist()
    assert len(head) == 32 and any(w != 0.0 for w in head) and model.joint_gate is None
    fresh = CrossEncoder.from_pretrained("tiny-bert", separate_layers=1, joint_head=True, max_length=model.max_length)
    fresh.load_weights(str(tmp_path))
    assert fresh.joint_head.values.tolist() == pytest.approx(head)
    assert Reranker(str(tmp_path)).compute_score([list(p) for p in PAIRS]) == pytest.approx(
        model.compute_score(PAIRS), abs=1e-5)
    assert CrossEncoder.from_pretrained(str(tmp_path), joint_head=False).joint_head is None


@pytest.mark.parametrize("keys, message", [
    (("model.separate_layers=0", "model.joint_head=true"), "model.joint_head=true needs model.separate_layers"),
    (("model.separate_layers=1", "model.joint_head=true", "model.joint_gate=true"), "set one of them"),
])
def test_joint_head_config_errors(tmp_path, keys, message):
    from rag_retrieval.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        main(tiny_args(tmp_path, *keys, config="configs/tests/reranker_tiny.yaml"))
