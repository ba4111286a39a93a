"""Paired significance: identical runs are no gain, a planted gain is found, and every comparison prints it."""

import json
import random

import pytest

from rag_retrieval.eval.__main__ import main as eval_main
from rag_retrieval.eval.significance import compare, paired_test, worst_regressions


def noisy_metric(n, seed):
    rng = random.Random(seed)
    return [rng.choice([0.0, 0.2, 1 / 3, 0.5, 1.0]) for _ in range(n)]


def test_identical_runs_give_p_one_and_an_interval_at_zero():
    a = noisy_metric(300, 0)
    result = paired_test(a, list(a))
    assert result["p_value"] == 1.0 and result["ci95"] == [0.0, 0.0] and result["ties"] == 300


def test_differences_that_cancel_give_a_large_p_and_an_interval_around_zero():
    a = noisy_metric(300, 1)
    b = [min(1.0, v + 0.2) if i % 2 else max(0.0, v - 0.2) for i, v in enumerate(a)]  # half up, half down
    result = paired_test(a, b)
    assert result["ci95"][0] < 0 < result["ci95"][1] and result["p_value"] > 0.2


def test_a_planted_improvement_is_significant_and_its_interval_holds_it():
    a = noisy_metric(300, 2)
    b = [1.0 if i % 4 == 0 else v for i, v in enumerate(a)]  # a quarter of the queries now answered first
    truth = sum(b) / 300 - sum(a) / 300
    result = paired_test(a, b)
    assert result["p_value"] < 0.05 and result["ci95"][0] > 0 and result["ci95"][0] <= truth <= result["ci95"][1]
    assert result["losses"] == 0 and result["wins"] == sum(x != y for x, y in zip(a, b))
    assert paired_test(a, b) == result  # seeded: the same numbers every time
    assert compare({"mrr@10": a, "map": a}, {"mrr@10": b})[0]["metric"] == "mrr@10"  # metrics both hold


def test_worst_regressions_name_the_queries():
    assert worst_regressions(["q1", "q2"], [1.0, 0.5], [0.2, 0.5]) == [{"query": "q1", "baseline": 1.0, "model": 0.2}]
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_test([1.0], [1.0, 0.5])


def test_eval_compares_models_and_writes_json(tmp_path, capsys):
    out = tmp_path / "cmp.json"
    eval_main(["--model", "minilm", "--model", "minilm", "--rerank", "data/example/test.jsonl", "--k", "1", "10",
               "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["models"] == ["minilm", "minilm"]
    mrr = next(r for r in report["comparisons"] if r["metric"] == "rerank_mrr@10")
    assert mrr["baseline"] == mrr["model"] == "minilm" and mrr["delta"] == 0.0 and mrr["p_value"] == 1.0
    assert "95% interval" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        eval_main(["--model", "minilm", "--rerank", "data/example/test.jsonl", "--json", str(out)])


def test_a_training_run_compares_after_with_before(tmp_path, capsys):
    from rag_retrieval.train.embedding import main
    from tests.conftest import tiny_args

    results = main(tiny_args(tmp_path))
    report = json.loads((tmp_path / "significance.json").read_text())
    mrr = next(r for r in report["comparisons"] if r["metric"] == "rerank_mrr@10")
    assert (mrr["baseline"], mrr["model"]) == ("before", "after")
    assert mrr["delta"] == pytest.approx(results["after"]["rerank_mrr@10"] - results["before"]["rerank_mrr@10"], abs=1e-6)
    assert mrr["ci95"][0] <= mrr["delta"] <= mrr["ci95"][1] and 0 < mrr["p_value"] <= 1
    assert "after vs before" in capsys.readouterr().out
