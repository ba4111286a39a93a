"""The label audit: planted label swaps are found, and --clean writes the file without them."""

import json

import pytest

from rag_retrieval.cli.audit import main as audit_main


@pytest.fixture
def swapped(tmp_path):
    """data/example/train.jsonl with a label swap planted in 4 records: another query's positive
    labelled positive, the record's own positive labelled negative (in place of its last negative)."""
    rows = [json.loads(line) for line in open("data/example/train.jsonl")]
    originals = [r["pos"][0] for r in rows]
    planted = {}
    for i in (2, 7, 12, 19):
        rec = rows[i]
        rec["pos"], rec["neg"][-1] = [originals[(i + 5) % len(rows)]], originals[i]
        planted[i + 1] = (rec["pos"][0], rec["neg"][-1])  # line -> (the wrong positive, the wrong negative)
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, planted


def test_audit_recovers_planted_label_swaps_and_cleans_them(swapped, tmp_path, capsys):
    path, planted = swapped
    report_path, clean = tmp_path / "audit.json", tmp_path / "clean.jsonl"
    result = audit_main([str(path), "--format", "pos_neg", "--teacher", "minilm", "--json", str(report_path),
                         "--clean", str(clean)])
    flagged = json.loads(report_path.read_text())["flagged"]
    found = {(f["line"], f["kind"], f["text"]) for f in flagged}
    for line, (wrong_pos, wrong_neg) in planted.items():
        assert (f"{path}:{line}", "weak_positive", wrong_pos) in found
        assert (f"{path}:{line}", "false_negative", wrong_neg) in found
    top = {int(f["line"].rsplit(":", 1)[1]) for f in flagged[: 2 * len(planted)]}
    assert len(top & set(planted)) >= len(planted) - 1  # the planted swaps are among the surest flags
    assert all(f["score_gap"] >= 0 for f in flagged) and result["weak_positive"] >= len(planted)
    rows = [json.loads(line) for line in clean.read_text().splitlines()]
    assert result["clean"]["records"] == 24 and len(rows) == 24 - result["clean"]["records_dropped"]
    original = [json.loads(line) for line in path.read_text().splitlines()]
    planted_queries = {original[line - 1]["query"] for line in planted}
    assert not planted_queries & {r["query"] for r in rows}  # their only positive was flagged: dropped
    for r in rows:  # the records kept lost exactly their flagged pairs
        before = next(o for o in original if o["query"] == r["query"])
        gone = {f["text"] for f in flagged if f["line"] == f"{path}:{original.index(before) + 1}"}
        assert r["pos"] + r["neg"] == [t for t in before["pos"] + before["neg"] if t not in gone]
    assert "likely false negatives" in capsys.readouterr().out


def test_audit_keeps_what_is_written_and_checks_the_file_first(swapped, tmp_path):
    path, _ = swapped
    existing = tmp_path / "clean.jsonl"
    existing.write_text("mine\n")
    with pytest.raises(SystemExit):
        audit_main([str(path), "--teacher", "minilm", "--clean", str(existing)])
    assert existing.read_text() == "mine\n"
    with pytest.raises(SystemExit):
        audit_main([str(path), "--teacher", "minilm", "--clean", str(path)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["p"]}\n{bad\n')
    from rag_retrieval.data import DataError

    with pytest.raises(DataError, match="bad.jsonl:2"):
        audit_main([str(bad), "--teacher", "minilm"])
