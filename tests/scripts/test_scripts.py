import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_csv_to_jsonl_groups_questions_and_samples_other_answers(tmp_path):
    src = tmp_path / "faq.csv"
    src.write_text('question,answer\nHow to reset?,"Hold the button, 5s"\nHow to reset?,Unplug it\n'
                   "Battery life?,Ten hours\nWarranty?,Two years\n\n")
    out = tmp_path / "train.jsonl"
    res = run("csv_to_jsonl.py", str(src), str(out), "--negatives", "2")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    first = rows[0]
    assert first["pos"] == ["Hold the button, 5s", "Unplug it"] and len(first["neg"]) == 2
    assert not set(first["neg"]) & set(first["pos"])


@pytest.mark.parametrize("content,error", [
    (b'question,answer\n"unclosed,quote\n', "bad CSV"),
    (b"query,reply\nq,a\n", "missing column(s) ['question', 'answer']"),
    (b"question,answer\nq,\xff\xfe\n", "not valid UTF-8"),
    (b"question,answer\nq,a,extra\n", ":2: more fields than the header"),
    (b"question,answer\nq,\n", ":2: empty 'answer'"),
])
def test_csv_to_jsonl_bad_input_gets_a_clear_error_and_no_output(tmp_path, content, error):
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    out = tmp_path / "out.jsonl"
    res = run("csv_to_jsonl.py", str(src), str(out))
    assert res.returncode == 2 and error in res.stderr, res.stderr
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_score_with_teacher_writes_scores_and_keeps_existing_output(tmp_path):
    out = tmp_path / "scored.jsonl"
    res = run("score_with_teacher.py", "--model", "tiny-bert", "--model-type", "cross-encoder", "--input",
              "data/example/train.jsonl", "--output", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 24 and len(rows[0]["neg_scores"]) == len(rows[0]["neg"]) and len(rows[0]["pos_scores"]) == 1
    before = out.read_text()
    res = run("score_with_teacher.py", "--model", "tiny-bert", "--input", "data/example/train.jsonl", "--output", str(out))
    assert res.returncode == 2 and "--overwrite" in res.stderr and out.read_text() == before
