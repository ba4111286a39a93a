import json

import pytest

from rag_retrieval.data import DataError, load_examples, scan


def write(path, lines):
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return str(path)


def test_pos_neg_hits_pointwise_become_examples(tmp_path):
    ds = load_examples("data/example/train_scores.jsonl", "pos_neg", cache_dir=str(tmp_path))
    row = ds[0]
    assert row["labels"] == [1.0] + [0.0] * 7 and len(row["scores"]) == 8 and row["prompt"] is None
    hits = load_examples("data/example/hits.jsonl", "hits", cache_dir=str(tmp_path))
    assert hits[0]["labels"][:2] == [2.0, 1.0] and hits[0]["scores"] is None
    point = load_examples("data/example/pointwise.jsonl", "pointwise", cache_dir=str(tmp_path))
    assert len(point) == 16 and point[1]["labels"] == [0.0]


def test_every_bad_record_is_reported_with_file_and_line(tmp_path):
    good = json.dumps({"query": "q", "pos": ["p"], "neg": ["n"]})
    path = write(tmp_path / "bad.jsonl", [
        good,
        b'{"query": "q", "pos": ["p"',  # 2 bad JSON
        json.dumps({"pos": ["p"]}),  # 3 missing query
        json.dumps({"query": "  ", "pos": ["p"]}),  # 4 empty query
        json.dumps({"query": "q", "pos": []}),  # 5 empty pos
        json.dumps({"query": "q", "pos": "p"}),  # 6 wrong type
        json.dumps({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1], "neg_scores": [1, 2]}),  # 7
        b"",  # blank lines are fine
        b'{"query": "\xff\xfe", "pos": ["p"]}',  # 9 not UTF-8
        json.dumps([1, 2]),  # 10 not an object
    ])
    with pytest.raises(DataError) as err:
        scan([path], "pos_neg")
    msg = str(err.value)
    for expected in [f"{path}:2: line: bad JSON", f"{path}:3: query: missing", f"{path}:4: query: empty",
                     f"{path}:5: pos: empty list", f"{path}:6: pos: expected a list", f"{path}:7: neg_scores: has 2",
                     f"{path}:9: line: not valid UTF-8", f"{path}:10: record: expected a JSON object"]:
        assert expected in msg, expected
    assert "data.skip_bad_lines" in msg


def test_skip_bad_lines_keeps_the_good_ones(tmp_path, caplog):
    good = json.dumps({"query": "q", "pos": ["p"], "neg": ["n"]})
    path = write(tmp_path / "mixed.jsonl", [good, b"{oops", good])
    ds = load_examples(path, "pos_neg", skip_bad_lines=True, cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 2
    assert "skipping 1 bad record" in caplog.text


def test_nothing_usable_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="no usable record"):
        scan([write(tmp_path / "empty.jsonl", [b""])], "pos_neg")
    with pytest.raises(DataError, match="file not found"):
        scan([str(tmp_path / "nope.jsonl")], "pos_neg")


def test_hits_and_pointwise_checks(tmp_path):
    path = write(tmp_path / "h.jsonl", [json.dumps({"query": "q", "hits": [{"content": "c", "label": "x"}]})])
    with pytest.raises(DataError, match=r"h.jsonl:1: hits\[0\].label: expected a number"):
        scan([path], "hits")
    path = write(tmp_path / "p.jsonl", [json.dumps({"query": "q", "label": 1})])
    with pytest.raises(DataError, match=r"p.jsonl:1: content: missing"):
        scan([path], "pointwise")


def test_cache_follows_file_changes(tmp_path):
    path = tmp_path / "d.jsonl"
    write(path, [json.dumps({"query": "first", "pos": ["p"]})])
    assert load_examples(str(path), "pos_neg", cache_dir=str(tmp_path / "c"))[0]["query"] == "first"
    write(path, [json.dumps({"query": "second!", "pos": ["p"]})])
    assert load_examples(str(path), "pos_neg", cache_dir=str(tmp_path / "c"))[0]["query"] == "second!"
