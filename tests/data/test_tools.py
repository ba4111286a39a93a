"""rag-retrieval validate and split: errors by line, stats, leakage-free splits, no partial output."""

import json

import pytest

from tests.helpers import cli_rc
from rag_retrieval.data.tools import split_file, validate_file


def write(path, lines):
    with open(path, "wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else (json.dumps(line) if isinstance(line, dict) else line).encode())
            f.write(b"\n")
    return str(path)


GOOD = [
    {"query": "web browser", "pos": ["a browser"], "neg": ["an editor", "a browser", "an editor"]},
    {"query": "text editor", "pos": ["an editor"], "neg": ["a shell"]},
    {"query": "web browser", "pos": ["another browser"], "neg": []},
]


def test_validate_reports_every_bad_line_and_stats(tmp_path, capsys):
    path = write(tmp_path / "d.jsonl", GOOD[:2] + ["", "{not json", b"\xff\xfe", {"query": "q", "neg": ["x"]}] + GOOD[2:])
    report = validate_file(path, "pos_neg")
    assert report["errors"] == [
        f"{path}:4: line: bad JSON (Expecting property name enclosed in double quotes at column 2)",
        f"{path}:5: line: not valid UTF-8 (invalid start byte at byte 0)",
        f"{path}:6: pos: missing",
    ]
    s = report["stats"]
    assert (s["records"], s["good_records"], s["bad_records"], s["queries"]) == (6, 3, 3, 2)
    assert s["duplicate_query_records"] == 1
    assert s["duplicate_docs_within_records"] == 2  # "an editor" twice, "a browser" as pos and neg
    assert s["negatives_equal_to_a_positive"] == 1  # "a browser" is both
    assert s["positives_per_query"] == {"min": 1, "mean": 1.5, "max": 2}
    assert s["query_length"]["max"] == 2 and s["length_unit"] == "words"
    assert cli_rc(["validate", path, "--format", "pos_neg"]) == 1
    assert f"{path}:6: pos: missing" in capsys.readouterr().err


def test_validate_counts_tokens_and_overlap(tmp_path):
    from transformers import AutoTokenizer

    from rag_retrieval.models.hub import resolve_model_path

    path = write(tmp_path / "d.jsonl", GOOD)
    other = write(tmp_path / "eval.jsonl", [{"query": "text editor", "pos": ["x"]}, {"query": "compiler", "pos": ["y"]}])
    tok = AutoTokenizer.from_pretrained(resolve_model_path("tiny-bert"))
    report = validate_file(path, "pos_neg", tok, against=other)
    assert report["errors"] == [] and report["stats"]["length_unit"] == "tokens"
    assert report["stats"]["overlap_with"]["shared_queries"] == 1
    assert report["stats"]["overlap_with"]["examples"] == ["text editor"]
    assert cli_rc(["validate", path, "--format", "pos_neg", "--json", str(tmp_path / "r.json")]) == 0
    assert json.load(open(tmp_path / "r.json"))["stats"]["queries"] == 2


def test_split_by_query_without_leakage(tmp_path):
    records = [{"query": f"q{i % 7}", "pos": [f"p{i}"], "neg": [f"n{i}"]} for i in range(30)]
    path = write(tmp_path / "all.jsonl", records)
    train, dev = str(tmp_path / "train.jsonl"), str(tmp_path / "dev.jsonl")
    counts = split_file(path, "pos_neg", 0.3, train, dev, seed=1)
    read = lambda p: [json.loads(line) for line in open(p)]  # noqa: E731
    tq, dq = {r["query"] for r in read(train)}, {r["query"] for r in read(dev)}
    assert not tq & dq and len(tq | dq) == 7 and len(dq) == 2 == counts["eval_queries"]
    assert sorted(map(json.dumps, read(train) + read(dev))) == sorted(map(json.dumps, records))
    with pytest.raises(FileExistsError):  # never overwrites without asking
        split_file(path, "pos_neg", 0.3, train, dev, seed=1)
    split_file(path, "pos_neg", 0.3, train, dev, seed=1, overwrite=True)
    assert {r["query"] for r in read(dev)} == dq  # same seed, same split


def test_split_writes_nothing_when_a_record_is_bad(tmp_path):
    path = write(tmp_path / "all.jsonl", GOOD + [{"query": "", "pos": ["x"]}])
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    assert cli_rc(["split", path, "--format", "pos_neg", "--train-out", str(train), "--eval-out", str(dev)]) \
        == f"error: bad records, nothing written:\n  {path}:4: query: empty"
    assert not train.exists() and not dev.exists()


def test_convert_round_trips_between_formats(tmp_path):
    src = write(tmp_path / "pn.jsonl", [{"query": "q1", "pos": ["a"], "neg": ["b", "c"], "pos_scores": [0.9],
                                         "neg_scores": [0.2, 0.1]},
                                        {"query": "q2", "pos": ["d"], "neg": ["e"], "pos_scores": [1.0],
                                         "neg_scores": [0.0]}])
    read = lambda p: [json.loads(line) for line in open(p)]  # noqa: E731
    assert cli_rc(["convert", src, str(tmp_path / "pw.jsonl"), "--from", "pos_neg", "--to", "pointwise"]) == 0
    assert len(read(tmp_path / "pw.jsonl")) == 5
    assert cli_rc(["convert", str(tmp_path / "pw.jsonl"), str(tmp_path / "hits.jsonl"), "--from", "pointwise",
                   "--to", "hits"]) == 0
    hits = read(tmp_path / "hits.jsonl")
    assert [h["query"] for h in hits] == ["q1", "q2"] and [x["label"] for x in hits[0]["hits"]] == [1.0, 0.0, 0.0]
    assert cli_rc(["convert", str(tmp_path / "hits.jsonl"), str(tmp_path / "back.jsonl"), "--from", "hits",
                   "--to", "pos_neg"]) == 0
    assert read(tmp_path / "back.jsonl") == read(src)


def test_convert_csv_and_bad_inputs(tmp_path):
    csv_path = tmp_path / "faq.csv"
    csv_path.write_text('question,answer\nhow to install,run pip\nhow to test,run pytest\n"how, quoted",fine\n')
    out = tmp_path / "out.jsonl"
    assert cli_rc(["convert", str(csv_path), str(out), "--from", "csv", "--to", "pos_neg", "--negatives", "1"]) == 0
    assert [len(json.loads(line)["neg"]) for line in open(out)] == [1, 1, 1]
    assert cli_rc(["convert", str(csv_path), str(out), "--from", "csv", "--to", "hits"]) \
        == f"error: {out} exists; pass --overwrite to replace it"
    bad = tmp_path / "bad.csv"
    bad.write_text('question,answer\n"unclosed,quote\n')
    res = cli_rc(["convert", str(bad), str(tmp_path / "x.jsonl"), "--from", "csv", "--to", "pos_neg"])
    assert res.startswith(f"error: {bad}:") and not (tmp_path / "x.jsonl").exists()
    missing = tmp_path / "missing.csv"
    missing.write_text("q,a\nx,y\n")
    res = cli_rc(["convert", str(missing), str(tmp_path / "y.jsonl"), "--from", "csv", "--to", "pos_neg"])
    assert "missing column(s) ['question', 'answer']" in res and not (tmp_path / "y.jsonl").exists()
    nonutf = tmp_path / "bad.jsonl"
    nonutf.write_bytes(b'{"query": "q", "pos": ["a"]}\n\xff\n')
    res = cli_rc(["convert", str(nonutf), str(tmp_path / "z.jsonl"), "--from", "pos_neg", "--to", "hits"])
    assert f"{nonutf}:2: line: not valid UTF-8" in res and not (tmp_path / "z.jsonl").exists()
