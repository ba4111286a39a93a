"""The files users of RAG-Retrieval and FlagEmbedding train on: rank and graded labels, label
scaling, every input a reader takes, column mappings, evaluation files of every format, BEIR
folders, Chinese text, the relative margin with negative scores, batches without a text that is
both a positive and a negative."""

import json
import os

import numpy as np
import pytest
import torch

from rag_retrieval.config import load_config
from rag_retrieval.data import PairCollator, build_grouped_dataset, load_examples
from rag_retrieval.data.datasets import GroupedDataset
from rag_retrieval.data.inputs import iter_records
from rag_retrieval.data.labels import label_kind
from rag_retrieval.errors import DataError
from rag_retrieval.losses import RANKING_LOSSES, build_ranking_loss
from rag_retrieval.train.args import RetrievalTrainingArguments
from rag_retrieval.train.preflight import preflight
from tests.conftest import ROOT
from tests.helpers import cli_rc

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
DOCS = ["Firefox is a web browser.", "GCC compiles C.", "Vim edits text.", "Bash is a shell.", "GIMP edits images.",
        "Lynx browses the web in a terminal."]


def write(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return str(path)


def rank_file(tmp_path):
    """RAG-Retrieval's grouped listwise file: labels -1 (best), -2, ... (higher is better)."""
    return write(tmp_path / "rank.jsonl", [{"query": f"query {i}", "hits": [
        {"content": DOCS[(i + j) % 6], "label": -(j + 1)} for j in range(4)]} for i in range(8)])


def graded_file(tmp_path):
    """RAG-Retrieval's pointwise file with graded labels 0/1/2."""
    return write(tmp_path / "graded.jsonl", [{"query": f"query {i}", "content": DOCS[(i + j) % 6], "label": 2 - j}
                                             for i in range(8) for j in range(3)])


def one_positive_file(tmp_path):
    return write(tmp_path / "one.jsonl", [{"query": f"query {i}", "pos": [DOCS[i % 6]], "neg": [DOCS[(i + 1) % 6]]}
                                          for i in range(8)])


FILES = {"rank": (rank_file, "hits"), "graded": (graded_file, "pointwise"), "one_positive": (one_positive_file, "pos_neg")}


def config(tmp_path, path, fmt, loss, *extra):
    group = 1 if fmt == "pointwise" else 3
    return load_config(["--config", "configs/tests/reranker_tiny.yaml", f"data.train_path={path}", f"data.format={fmt}",
                        f"data.group_size={group}", f"loss.name={loss}", f"train.output_dir={tmp_path / 'out'}",
                        "eval.rerank_path=null", *extra], "reranker", RetrievalTrainingArguments)


def one_step_loss(cfg, examples):
    """The loss and gradient norm of one batch, through the training code (model, collator, loss)."""
    from rag_retrieval.models import CrossEncoder

    torch.manual_seed(0)
    model = CrossEncoder.from_args(cfg.model, cfg.data)
    dataset = build_grouped_dataset(examples, cfg.data, cfg.train)
    batch = PairCollator(model.tokenize)([dataset[i] for i in range(4)])
    loss = build_ranking_loss(cfg.loss)(**model(**batch["features"]), **batch["targets"])
    loss = sum(loss.values()) if isinstance(loss, dict) else loss
    loss.backward()
    grad = sum(p.grad.norm() ** 2 for p in model.parameters() if p.grad is not None) ** 0.5
    return float(loss), float(grad)


@pytest.mark.parametrize("kind", sorted(FILES))
@pytest.mark.parametrize("loss", sorted(set(RANKING_LOSSES) - {"kl_distill"}))
def test_every_loss_trains_or_refuses_before_loading(kind, loss, tmp_path):
    make, fmt = FILES[kind]
    path = make(tmp_path)
    if fmt == "pointwise" and loss not in ("bce", "mse"):  # groups of one: refused with the config
        from rag_retrieval.config import ConfigError

        with pytest.raises(ConfigError, match=f"loss.name={loss} compares documents of a query"):
            config(tmp_path, path, fmt, loss)
        return
    cfg = config(tmp_path, path, fmt, loss)
    try:
        ready = preflight(cfg)
    except DataError as err:  # refused: names the loss, what it needs, lines, and what fits
        message = str(err)
        assert f"'{loss}' needs" in message and f"{path}:" in message, message
        assert "losses that fit" in message or "label_range" in message, message
        assert not (tmp_path / "out").exists()
        return
    value, grad = one_step_loss(cfg, ready.examples)
    assert value != 0 and grad > 0, (kind, loss, value, grad)


def test_rank_labels_with_listwise_ce_name_what_fits(tmp_path):
    path = rank_file(tmp_path)
    with pytest.raises(DataError) as err:
        preflight(config(tmp_path, path, "hits", "listwise_ce"))
    message = str(err.value)
    assert "labels are rank (-4 to -1)" in message and f"{path}:1" in message
    assert "losses that fit: mse, ranknet, listnet, listmle;" in message and "data.label_range" in message
    ready = preflight(config(tmp_path, path, "hits", "listwise_ce", "data.label_range=[-4,-1]"))  # RAG-Retrieval's
    assert ready.examples[0]["labels"] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])  # min_label / max_label


def test_graded_labels_scale_for_bce(tmp_path):
    path = graded_file(tmp_path)
    with pytest.raises(DataError, match=r"'bce' needs labels in \[0, 1\].*graded \(0 to 2\).*data.label_range"):
        preflight(config(tmp_path, path, "pointwise", "bce"))
    ready = preflight(config(tmp_path, path, "pointwise", "bce", "data.label_range=[0,2]"))
    assert sorted(set(v for g in ready.examples["labels"] for v in g)) == [0.0, 0.5, 1.0]
    value, grad = one_step_loss(config(tmp_path, path, "pointwise", "bce", "data.label_range=[0,2]"), ready.examples)
    assert value > 0 and grad > 0


def test_rank_labels_pick_the_top_ranked_document_as_positive(tmp_path):
    examples = load_examples(rank_file(tmp_path), "hits")
    dataset = GroupedDataset(examples, group_size=3, seed=0)
    for i in range(len(dataset)):
        item = dataset[i]
        assert item["labels"][0] == -1.0 and max(item["labels"]) == -1.0


def test_validate_reports_the_label_kind(tmp_path):
    from rag_retrieval.data.tools import validate_file

    stats = validate_file(rank_file(tmp_path), "hits")["stats"]
    assert stats["label_kind"] == "rank" and stats["positives_per_query"]["min"] == 1
    assert validate_file(graded_file(tmp_path), "pointwise")["stats"]["label_kind"] == "graded"
    assert label_kind([0.2, 0.7]) == "continuous"


# ---- inputs --------------------------------------------------------------------------------------
def test_shards_datasets_folders_and_column_mappings_read_as_one_file(tmp_path):
    import datasets

    records = [{"question": f"q{i}", "answer": DOCS[i % 6], "wrong": [DOCS[(i + 1) % 6]]} for i in range(6)]
    columns = {"query": "question", "pos": "answer", "neg": "wrong"}
    plain = load_examples(write(tmp_path / "all.jsonl", records), "pos_neg", columns=columns)
    shards = tmp_path / "shards"
    shards.mkdir()
    write(shards / "part-0.jsonl", records[:3])
    write(shards / "part-1.jsonl", records[3:])
    from_shards = load_examples(str(shards), "pos_neg", columns=columns)
    saved = tmp_path / "saved"
    datasets.Dataset.from_list(records).save_to_disk(str(saved))
    from_disk = load_examples(str(saved), "pos_neg", columns=columns)
    key = ["query", "docs", "labels"]
    assert plain.select_columns(key).to_list() == from_shards.select_columns(key).to_list() \
        == from_disk.select_columns(key).to_list()
    assert plain[0]["docs"] == [DOCS[0], DOCS[1]] and from_shards[3]["where"].endswith("part-1.jsonl:1")
    assert from_disk[2]["where"] == f"{saved}[row 2]"
    with pytest.raises(DataError, match=r"shards.*:2: pos: missing"):
        write(shards / "part-2.jsonl", [records[0], {"question": "q"}])
        load_examples(str(shards), "pos_neg", columns=columns)


def test_a_hub_dataset_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"hf://datasets/nobody/none:train: cannot load the dataset 'nobody/none'.*"
                                        r"downloads are off"):
        list(iter_records("hf://datasets/nobody/none:train"))


def test_eval_files_in_every_format_and_graded_ndcg(tmp_path):
    from rag_retrieval.eval import RerankEvaluator

    class Overlap:  # a ranker that scores word overlap
        def compute_score(self, pairs, batch_size=None):
            return [float(len(set(q.split()) & set(d.lower().split()))) for q, d in pairs]

    hits = write(tmp_path / "e.jsonl", [{"query": "web browser", "hits": [
        {"content": "a text editor", "label": 0}, {"content": "a web browser", "label": 1},
        {"content": "web browser in a terminal web", "label": 2}]}])
    metrics = RerankEvaluator(hits, k_values=[10], fmt="hits")(Overlap())
    # scores: 0, 2, 2 -> order 1, 2, 0 (ties stable): gains 1, 2 at ranks 1, 2; ideal 2, 1
    dcg, idcg = 1 + 2 / np.log2(3), 2 + 1 / np.log2(3)
    assert metrics["rerank_ndcg@10"] == pytest.approx(dcg / idcg) and metrics["rerank_mrr@10"] == 1.0
    pointwise = write(tmp_path / "p.jsonl", [{"query": "web browser", "content": d["content"], "label": d["label"]}
                                             for d in json.loads(open(hits).readline())["hits"]])
    assert RerankEvaluator(pointwise, k_values=[10], fmt="pointwise")(Overlap()) == metrics


# ---- BEIR -----------------------------------------------------------------------------------------
def beir_folder(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    write(folder / "corpus.jsonl", [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(DOCS)])
    write(folder / "queries.jsonl", [{"_id": "q1", "text": "web browser"}, {"_id": "q2", "text": "edit"},
                                     {"_id": "q3", "text": "no relevant document"}])
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t2\nq1\td5\t1\nq2\td2\t1\n"
                                               "q2\td4\t1\nq3\td1\t0\n")
    return str(folder)


class FixedEmbedder:
    """A bi-encoder whose vectors make the ranking known: for 'web browser' d5 first, then d0; for
    'edit' d4, d1, d2."""
    order = {"web browser": ["d5", "d0"], "edit": ["d4", "d1", "d2"]}

    def encode_passages(self, texts, batch_size=None):
        return torch.eye(len(texts))

    def encode_queries(self, queries, batch_size=None):
        out = torch.zeros(len(queries), len(DOCS))
        for row, q in enumerate(queries):
            for rank, doc in enumerate(self.order[q]):
                out[row, int(doc[1:])] = 10.0 - rank
        return out


def test_beir_metrics_equal_a_hand_computation(tmp_path):
    from rag_retrieval.eval import RetrievalEvaluator

    ev = RetrievalEvaluator(beir=beir_folder(tmp_path), split="test", k_values=[1, 3, 10], name="")
    assert [qid for qid, _ in ev.queries] == ["q1", "q2"]  # q3 has no relevant document
    m = ev(FixedEmbedder())
    log2 = np.log2
    # q1: ranked d5 (1), d0 (2), rest 0; ideal 2, 1
    ndcg_q1 = (1 + 2 / log2(3)) / (2 + 1 / log2(3))
    # q2: ranked d4 (1), d1 (0), d2 (1); ideal 1, 1
    ndcg_q2 = (1 + 1 / log2(4)) / (1 + 1 / log2(3))
    assert m["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert m["mrr@10"] == pytest.approx(1.0) and m["recall@1"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["recall@3"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx(((1 / 1 + 2 / 2) / 2 + (1 / 1 + 2 / 3) / 2) / 2)


def test_eval_cli_on_a_beir_folder(tmp_path, capsys):
    assert cli_rc(["eval", "--model", "tiny-bert", "--beir", beir_folder(tmp_path), "--k", "1", "10"]) == 0
    table = capsys.readouterr().out
    assert "beir_ndcg@10" in table and "beir_map" in table


def test_beir_converts_to_training_data(tmp_path):
    folder = beir_folder(tmp_path)
    out = tmp_path / "train.jsonl"
    assert cli_rc(["convert", folder, str(out), "--from", "beir", "--to", "pos_neg", "--split", "test"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"query": "web browser", "pos": [DOCS[0], DOCS[5]], "neg": []},
                    {"query": "edit", "pos": [DOCS[2], DOCS[4]], "neg": []}]  # best grade first
    mined = tmp_path / "mined.jsonl"
    assert cli_rc(["convert", folder, str(mined), "--from", "beir", "--to", "pos_neg", "--split", "test", "--mine",
                   "random", "--negatives", "2"]) == 0
    for row in map(json.loads, mined.read_text().splitlines()):
        assert len(row["neg"]) == 2 and not set(row["neg"]) & set(row["pos"])


# ---- Chinese text -----------------------------------------------------------------------------------
def test_bm25_on_chinese_text_ranks_the_positive_first(tmp_path):
    from rag_retrieval.data.mining_corpus import read_corpus
    from rag_retrieval.data.mining_search import bm25_search

    pairs = [json.loads(line) for line in open(os.path.join(FIXTURES, "chinese_pairs.jsonl"), encoding="utf-8")]
    corpus = read_corpus(os.path.join(FIXTURES, "chinese_corpus.jsonl"))
    queries = [p["query"] for p in pairs]
    firsts = {}
    for tokenizer in ("auto", "english"):
        ids = bm25_search(queries, corpus, 5, show_progress=False, tokenizer=tokenizer)[0]
        firsts[tokenizer] = np.mean([corpus[row[0]] == p["pos"][0] if row[0] >= 0 else False
                                     for row, p in zip(ids, pairs)])
    assert firsts["auto"] >= 0.8, firsts  # character bigrams
    assert firsts["english"] < firsts["auto"]  # split on spaces and stemmed in English: most queries find nothing
    out, summary = tmp_path / "mined.jsonl", tmp_path / "summary.json"
    assert cli_rc(["mine", os.path.join(FIXTURES, "chinese_pairs.jsonl"), str(out), "--format", "pos_neg", "--corpus",
                   os.path.join(FIXTURES, "chinese_corpus.jsonl"), "--negatives", "3", "--json", str(summary)]) == 0
    stats = json.load(open(summary))
    assert stats["positive_mrr_at_10"] >= 0.8 and stats["negatives_per_query"]["max"] == 3
    # unrelated everyday passages share few bigrams: negatives only where some overlap exists
    assert stats["queries_without_negatives"] < stats["queries"]


def test_colbert_masks_unicode_punctuation_and_validate_counts_cjk_words(tmp_path):
    from rag_retrieval.data.tools import validate_file
    from rag_retrieval.models import ColBERT

    model = ColBERT.from_pretrained("tiny-bert", dim=8)
    for mark in ("，", "。", "？", "！", "、", ",", "?"):
        token = model.tokenizer.convert_tokens_to_ids(mark)
        assert token != model.tokenizer.unk_token_id and token in model.punctuation_ids.tolist(), mark
    features = model.tokenize_passages(["调整图片，然后保存。"])
    masked = {model.tokenizer.convert_ids_to_tokens(int(t)) for t, m in
              zip(features["input_ids"][0], features["score_mask"][0]) if not m and t != model.tokenizer.pad_token_id}
    assert {"，", "。"} <= masked
    stats = validate_file(os.path.join(FIXTURES, "chinese_pairs.jsonl"), "pos_neg")["stats"]
    assert stats["query_length"]["max"] >= 10  # characters, not one "word" per query


# ---- mining and batches ----------------------------------------------------------------------------
def test_relative_margin_with_negative_scores():
    from rag_retrieval.data.mining import MineOptions, Retrieval, false_negative_filter

    scores = {0: -2.0, 1: -2.5, 2: -5.0}  # the positive 0 scores -2; a cross-encoder's logits, say
    retrieval = Retrieval(None, [lambda q, docs: {d: scores[d] for d in docs}])
    too_close = false_negative_filter(0, [1, 2], {0}, retrieval, MineOptions(relative_margin=0.5))
    assert too_close(1) and not too_close(2)  # the cut is -2 - 0.5 * 2 = -3 (not -2 * 0.5 = -1)


def test_no_batch_holds_a_text_as_positive_and_negative(tmp_path):
    # query 0's negative is query 1's positive: they must not share a batch
    records = [{"query": "q0", "pos": ["A"], "neg": ["B"]}, {"query": "q1", "pos": ["B"], "neg": ["C"]},
               {"query": "q2", "pos": ["D"], "neg": ["E"]}, {"query": "q3", "pos": ["F"], "neg": ["G"]}]
    examples = load_examples(write(tmp_path / "t.jsonl", records), "pos_neg")
    for seed in range(20):
        dataset = GroupedDataset(examples, group_size=2, seed=seed, global_batch_size=2)
        for epoch in range(2):
            dataset.set_epoch(epoch)
            for start in (0, 2):
                batch = [dataset[i] for i in (start, start + 1)]
                positives = {b["passages"][0] for b in batch}
                negatives = {p for b in batch for p in b["passages"][1:]}
                assert not positives & negatives, (seed, epoch, batch)


def test_embedding_losses_take_rank_labels_and_refuse_groups_without_a_positive(tmp_path):
    def embedding_config(path, *extra):
        return load_config(["--config", "configs/tests/embedding_tiny.yaml", f"data.train_path={path}",
                            "data.format=hits", f"train.output_dir={tmp_path / 'out'}", "eval.rerank_path=null", *extra],
                           "embedding", RetrievalTrainingArguments)

    assert len(preflight(embedding_config(rank_file(tmp_path))).examples) == 8  # the -1 document is the positive
    flat = write(tmp_path / "flat.jsonl", [{"query": f"q{i}", "hits": [{"content": d, "label": 0} for d in DOCS[:3]]}
                                           for i in range(4)])
    with pytest.raises(DataError, match=r"'infonce' needs a positive labelled above.*flat.jsonl:1"):
        preflight(embedding_config(flat))


def test_pointwise_losses_refuse_constant_targets(tmp_path):
    same = write(tmp_path / "same.jsonl", [{"query": f"q{i}", "content": DOCS[i], "label": 1} for i in range(4)])
    for loss in ("bce", "mse"):
        with pytest.raises(DataError, match=f"'{loss}' needs .*4 of 4 records give it nothing"):
            preflight(config(tmp_path, same, "pointwise", loss))


def test_rank_labels_in_evaluation_need_a_mapping(tmp_path):
    from rag_retrieval.eval import RerankEvaluator

    path = rank_file(tmp_path)
    with pytest.raises(DataError, match=r"no document is labelled > 0.*labels are rank.*label_range"):
        RerankEvaluator(path, fmt="hits")
    ev = RerankEvaluator(path, fmt="hits", label_range=[-4, -1], k_values=[10])
    assert ev.examples[0].labels == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])


def test_beir_leaves_out_a_document_with_the_querys_own_id(tmp_path):
    from rag_retrieval.eval import RetrievalEvaluator

    folder = beir_folder(tmp_path)
    with open(os.path.join(folder, "corpus.jsonl"), "a") as f:
        f.write(json.dumps({"_id": "q1", "text": "web browser"}) + "\n")
    ev = RetrievalEvaluator(beir=folder, k_values=[1, 10], name="")

    class QueryFirst(FixedEmbedder):  # ranks the query's own copy first for q1
        def encode_queries(self, queries, batch_size=None):
            out = torch.zeros(len(queries), len(DOCS) + 1)
            out[:, : len(DOCS)] = super().encode_queries(queries)
            out[0, len(DOCS)] = 100.0
            return out

        def encode_passages(self, texts, batch_size=None):
            return torch.eye(len(texts))

    assert ev(QueryFirst())["mrr@1"] == pytest.approx(1.0)


def test_a_split_of_a_saved_dataset_dict(tmp_path):
    import datasets

    records = [{"query": f"q{i}", "pos": [DOCS[i]]} for i in range(4)]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(records[:3]),
                          "test": datasets.Dataset.from_list(records[3:])}).save_to_disk(str(tmp_path / "dd"))
    assert [r["query"] for _, r, _ in iter_records(f"{tmp_path / 'dd'}:test")] == ["q3"]
    assert len(load_examples(str(tmp_path / "dd"), "pos_neg")) == 3  # the train split by default


def test_broken_inputs_of_the_commands_are_one_line(tmp_path):
    import gzip

    csv_gz = tmp_path / "faq.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"question,answer\nq,a\n" * 50)[:40])  # truncated
    message = cli_rc(["convert", str(csv_gz), str(tmp_path / "o.jsonl"), "--from", "csv", "--to", "pos_neg"])
    assert str(message).startswith(f"error: {csv_gz}: cannot read it as .gz data")
    odd = write(tmp_path / "q.jsonl", [{"query": "q", "pos": "a single document"}])
    assert cli_rc(["rerank", "--model", "tiny-bert", "--model-type", "cross-encoder", "--input", odd, "--output",
                   str(tmp_path / "ranked.jsonl")]) == 0


def test_batch_order_with_one_text_the_positive_of_many_queries():
    from rag_retrieval.data.datasets import no_duplicate_order

    rng = np.random.default_rng(0)
    keys = rng.integers(1, 10**9, 4000)
    keys[rng.random(4000) < 0.1] = 7  # an FAQ's generic answer
    texts = {i: [int(keys[i])] + rng.integers(1, 10**9, 8).tolist() for i in range(4000)}
    order = no_duplicate_order(np.arange(4000), keys, 32, lambda i: texts[i])
    assert sorted(order.tolist()) == list(range(4000))
    clean = [order[s : s + 32] for s in range(0, 4000 - 32 * 150, 32)]  # the first chunks: no repeated positive
    assert all(len({keys[i] for i in c}) == len(c) for c in clean)
