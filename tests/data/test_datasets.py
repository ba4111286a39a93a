import json

import numpy as np

from rag_retrieval.data import EmbeddingCollator, GroupedDataset, load_examples
from rag_retrieval.models.hub import resolve_model_path


def examples(tmp_path, rows):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_examples(str(path), "pos_neg", cache_dir=str(tmp_path / "cache"))


def test_group_is_positive_then_negatives_and_resampled_per_epoch(tmp_path):
    rows = [{"query": f"q{i}", "pos": [f"p{i}"], "neg": [f"n{i}_{j}" for j in range(8)]} for i in range(6)]
    ds = GroupedDataset(examples(tmp_path, rows), group_size=4, seed=3)
    epoch0 = [ds[i] for i in range(len(ds))]
    assert all(len(it["passages"]) == 4 and it["passages"][0] == "p" + it["query"][1:] for it in epoch0)
    assert all(len(set(it["passages"][1:])) == 3 for it in epoch0)  # enough negatives: no repeats
    again = GroupedDataset(examples(tmp_path, rows), group_size=4, seed=3)
    assert [again[i] for i in range(len(again))] == epoch0  # same seed, same epoch -> same items
    ds.set_epoch(1)
    assert [ds[i] for i in range(len(ds))] != epoch0


def test_few_negatives_are_drawn_with_replacement_and_none_from_other_examples(tmp_path):
    rows = [{"query": "a", "pos": ["pa"], "neg": ["na"]}, {"query": "b", "pos": ["pb"]}, {"query": "c", "pos": ["pc"]}]
    ds = GroupedDataset(examples(tmp_path, rows), group_size=3, seed=0, shuffle=False)
    assert ds[0]["passages"] == ["pa", "na", "na"]
    negatives = ds[1]["passages"][1:]
    assert len(negatives) == 2 and "pb" not in negatives
    assert set(negatives) <= {"pa", "na", "pc"}


def test_global_batches_never_repeat_a_positive(tmp_path):
    # 40 queries share 8 positive texts: a plain shuffle would put duplicates in batches of 4
    rows = [{"query": f"q{i}", "pos": [f"shared{i % 8}"], "neg": ["x"]} for i in range(40)]
    ds = GroupedDataset(examples(tmp_path, rows), group_size=2, seed=1, global_batch_size=4)
    for epoch in range(3):
        ds.set_epoch(epoch)
        positives = [ds[i]["passages"][0] for i in range(len(ds))]
        for start in range(0, 40, 4):
            assert len(set(positives[start : start + 4])) == 4
        assert sorted(ds[i]["query"] for i in range(40)) == sorted(r["query"] for r in rows)  # a permutation


def test_collator_tokenizes_queries_and_passages_apart(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    collate = EmbeddingCollator(tok, query_max_len=8, passage_max_len=16, query_instruction="query: ")
    batch = collate([
        {"query": "a b", "passages": ["p " * 50, "n"], "prompt": None, "teacher_scores": [1.0, 0.0]},
        {"query": "c", "passages": ["p2", "n2"], "prompt": "search: ", "teacher_scores": [0.5, 0.1]},
    ])
    assert batch["features"]["passage"]["input_ids"].shape == (4, 16)
    assert tok.decode(batch["features"]["query"]["input_ids"][1], skip_special_tokens=True) == "search : c"
    assert tok.decode(batch["features"]["query"]["input_ids"][0], skip_special_tokens=True) == "query : a b"
    assert batch["targets"]["teacher_scores"].shape == (2, 2)
    assert np.isclose(batch["targets"]["teacher_scores"][1, 0].item(), 0.5)
