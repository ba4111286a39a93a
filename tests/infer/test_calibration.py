"""Calibration: Platt scaling fitted by `rag-retrieval calibrate`, used by every Reranker's normalize=True."""

import json

import pytest

from rag_retrieval import Reranker
from rag_retrieval.cli.calibrate import main as calibrate_main
from rag_retrieval.infer import calibration
from rag_retrieval.models import CrossEncoder


@pytest.fixture(scope="module")
def overconfident(tmp_path_factory):
    """MiniLM as a split cross-encoder scoring 20 x cosine: every pair's sigmoid is near 1, most are negatives."""
    path = tmp_path_factory.mktemp("overconfident")
    CrossEncoder.from_pretrained("minilm", separate_layers=6, score_scale=20.0, max_length=128).save_pretrained(str(path))
    return path


def test_platt_recovers_a_planted_map():
    import random

    rng = random.Random(0)
    scores = [rng.uniform(-6, 6) for _ in range(4000)]
    labels = [float(rng.random() < p) for p in calibration.apply(scores, 0.5, -1.0)]  # the truth: a=0.5, b=-1
    a, b = calibration.fit_platt(scores, labels)
    assert a == pytest.approx(0.5, abs=0.07) and b == pytest.approx(-1.0, abs=0.15)
    fitted, plain = calibration.apply(scores, a, b), calibration.sigmoid(scores)
    assert calibration.ece(fitted, labels) < calibration.ece(plain, labels)
    assert calibration.brier(fitted, labels) < calibration.brier(plain, labels)
    with pytest.raises(ValueError, match="both relevant"):
        calibration.fit_platt([1.0, 2.0], [1, 1])


def test_calibrate_brings_ece_down_and_reranker_serves_the_probabilities(overconfident, capsys):
    report = calibrate_main(["--model", str(overconfident), "--data", "data/example/test.jsonl",
                             "--test", "data/example/test.jsonl", "--max-queries", "20", "--target-recall", "0.9"])
    assert report["data"]["ece_sigmoid"] > 0.3 and report["data"]["ece_calibrated"] < report["data"]["ece_sigmoid"] / 2
    assert report["data"]["brier_calibrated"] < report["data"]["brier_sigmoid"]
    assert report["threshold"]["test_recall"] >= 0.9
    saved = json.loads((overconfident / "calibration.json").read_text())
    assert saved["method"] == "platt" and saved["a"] == report["a"] and saved["fitted_on"]["pairs"] > 0
    ranker = Reranker(str(overconfident))
    pairs = [("web browser", "Firefox is a free web browser."), ("web browser", "GCC compiles C.")]
    raw = ranker.compute_score(pairs)
    assert ranker.compute_score(pairs, normalize=True) == pytest.approx(calibration.apply(raw, saved["a"], saved["b"]))
    assert [d.score for d in ranker.rerank(pairs[0][0], [p for _, p in pairs], normalize=True)] == pytest.approx(
        sorted(calibration.apply(raw, saved["a"], saved["b"]), reverse=True))
    assert "written to" in capsys.readouterr().out


def test_calibrate_refuses_a_bi_encoder_and_bad_recall_before_loading(tmp_path):
    from rag_retrieval.models import BiEncoder

    BiEncoder.from_pretrained("tiny-bert").save_pretrained(str(tmp_path))
    with pytest.raises(SystemExit):
        calibrate_main(["--model", str(tmp_path), "--data", "data/example/test.jsonl"])
    with pytest.raises(SystemExit):
        calibrate_main(["--model", str(tmp_path), "--data", "data/example/test.jsonl", "--target-recall", "1.5"])
