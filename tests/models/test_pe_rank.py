"""PE-Rank on tiny models (random Qwen2 LLM, random BERT embedder): the stepwise ListMLE, constrained
decoding (never repeats or invents a passage, sliding windows), train/serve agreement, both stages'
gradients, save/load."""

import pytest
import torch
import torch.nn.functional as F

from rag_retrieval.losses import stepwise_kl, stepwise_listmle
from rag_retrieval.models.pe_rank import PERank

PASSAGES = ["Firefox is a free and open source web browser.", "GCC is the GNU compiler collection.",
            "A command-line tool to resize and convert images.", "Vim is a text editor.",
            "Lynx is a text-mode web browser.", "lorem ipsum dolor sit amet " * 10]


@pytest.fixture(scope="module")
def pe():
    torch.manual_seed(0)
    return PERank.from_parts("tiny-qwen2", "tiny-bert", window_size=4, window_step=2)


def test_stepwise_listmle_matches_a_hand_computed_case():
    # one ranking of 3 passages, target order (1, 2, 0); a second, of 2 passages, padded to 3
    s = torch.tensor([[[0.5, 2.0, -1.0], [1.0, 9.0, 0.0], [3.0, 4.0, 5.0]],
                      [[1.0, 0.0, 7.0], [2.0, 3.0, 7.0], [0.0, 0.0, 0.0]]])
    order = torch.tensor([[1, 2, 0], [1, 0, 2]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    lse = lambda *x: torch.logsumexp(torch.tensor(x), 0).item()  # noqa: E731
    first = (lse(0.5, 2.0, -1.0) - 2.0) + (lse(1.0, 0.0) - 0.0) + (lse(3.0) - 3.0)  # step t: the not-yet-emitted
    second = (lse(1.0, 0.0) - 0.0) + (lse(2.0) - 2.0)  # passage 2 is padding: never a candidate, never a step
    assert stepwise_listmle(s, order, valid).item() == pytest.approx((first + second) / 2, abs=1e-5)
    assert stepwise_kl(s, s, order, valid).item() == pytest.approx(0.0, abs=1e-6)
    assert stepwise_kl(s, torch.zeros_like(s), order, valid).item() > 0


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 9, 17])
def test_decoding_never_repeats_or_invents_a_passage(pe, n):
    passages = [PASSAGES[i % len(PASSAGES)] + f" ({i})" * (i % 2) for i in range(n)]  # duplicates included
    order = pe.rank("web browser", passages)
    assert sorted(order) == list(range(n))


def test_greedy_decoding_follows_the_teacher_forced_training_logits(pe):
    """The KV-cached decoder at serving and the one-pass teacher-forced forward of training agree:
    replaying the decoded permutation, each step's argmax over the remaining passages is the choice."""
    passages = PASSAGES[:4]
    order = pe._decode("web browser", passages, pe.passage_tokens(passages))
    with torch.no_grad():
        logits, valid = pe.rank_logits(["web browser"], [passages], torch.tensor([order]))
    left = set(range(4))
    for t, choice in enumerate(order):
        masked = torch.tensor([logits[0, t, j] if j in left else float("-inf") for j in range(4)])
        assert int(masked.argmax()) == choice
        left.remove(choice)
    assert valid.all()


def test_batched_rank_logits_with_padding_equal_one_at_a_time(pe):
    queries, lists = ["web browser", "compiler"], [PASSAGES[:4], PASSAGES[1:3]]
    orders = torch.tensor([[3, 1, 0, 2], [1, 0, 2, 3]])  # the second ranking has 2 passages; 2, 3 pad
    with torch.no_grad():
        both, valid = pe.rank_logits(queries, lists, orders)
        one, _ = pe.rank_logits(queries[1:], lists[1:], orders[1:, :2])
    assert valid.tolist() == [[True] * 4, [True, True, False, False]]
    assert torch.allclose(both[1, :2, :2], one[0], atol=1e-5)


def test_stage_one_trains_only_the_projector_and_stage_two_reaches_the_llm(pe):
    pe.zero_grad()
    for p in pe.llm.parameters():
        p.requires_grad_(False)  # stage 1: the LLM is frozen
    logits, labels = pe.align_logits(PASSAGES[:3])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pe.projector.parameters())
    assert all(p.grad is None for p in pe.llm.parameters()) and all(p.grad is None for p in pe.embedder.parameters())
    assert (labels != -100).sum() > 0
    pe.zero_grad()
    for p in pe.llm.parameters():
        p.requires_grad_(True)
    orders = torch.tensor([[0, 2, 1, 3]])
    emb, valid = pe.rank_logits(["web browser"], [PASSAGES[:4]], orders)
    ctx, _ = pe.rank_logits(["web browser"], [PASSAGES[:4]], orders, contextual=True)
    total = stepwise_listmle(emb, orders, valid) + stepwise_listmle(ctx, orders, valid) + \
        stepwise_kl(ctx, emb, orders, valid)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pe.llm.parameters())
    assert all(p.grad is None for p in pe.embedder.parameters())  # the embedder stays frozen
    pe.zero_grad()


def test_save_and_load_give_the_same_rankings_and_logits(pe, tmp_path):
    pe.save_pretrained(str(tmp_path))
    assert {"llm", "embedder", "projector.pt", "rag_retrieval.json"} <= set(p.name for p in tmp_path.iterdir())
    loaded = PERank.from_pretrained(str(tmp_path))
    assert loaded.window_size == 4 and loaded.window_step == 2
    for query in ("web browser", "image tool"):
        assert loaded.rank(query, PASSAGES) == pe.rank(query, PASSAGES)
    orders = torch.tensor([[1, 0, 2]])
    with torch.no_grad():
        a, _ = pe.rank_logits(["q"], [PASSAGES[:3]], orders)
        b, _ = loaded.rank_logits(["q"], [PASSAGES[:3]], orders)
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="not a PE-Rank folder"):
        PERank.from_pretrained("tiny-qwen2")


def test_projector_with_its_own_hidden_size_reloads(tmp_path):
    model = PERank.from_parts("tiny-qwen2", "tiny-bert", projector_hidden=12)
    model.save_pretrained(str(tmp_path))
    loaded = PERank.from_pretrained(str(tmp_path))
    assert loaded.projector.dims == (32, 12, 32)
    assert loaded.rank("web browser", PASSAGES) == model.rank("web browser", PASSAGES)


def test_reranker_api_serves_pe_rank(pe, tmp_path):
    from rag_retrieval import Reranker
    from rag_retrieval.infer import PERankRanker

    pe.save_pretrained(str(tmp_path))
    ranker = Reranker(str(tmp_path))  # type detected from rag_retrieval.json
    assert isinstance(ranker, PERankRanker)
    docs = PASSAGES + [PASSAGES[0]]  # a duplicate shares its score
    res = ranker.rerank("web browser", docs, top_k=3)
    assert len(res) == 3 and res[0].rank == 0
    full = ranker.rerank("web browser", docs)
    assert sorted(full.ids) == list(range(len(docs)))
    assert full.scores[full.ids.index(0)] == full.scores[full.ids.index(len(docs) - 1)]
    order = pe.rank("web browser", PASSAGES)
    assert [d.id for d in ranker.rerank("web browser", PASSAGES)] == order
    scores = ranker.compute_score([("web browser", d) for d in PASSAGES] + [("editor", PASSAGES[3])])
    assert scores[order[0]] == len(PASSAGES) and scores[-1] == 1.0  # ranks within each query's own pairs
    assert ranker.rerank("q", []) == [] and len(ranker.rerank("q", ["one"])) == 1
    assert Reranker(str(tmp_path), window_size=3, window_step=1).model.window_size == 3
    with pytest.raises(ValueError, match="long_doc must be 'truncate'"):
        ranker.rerank("q", ["a"], long_doc="max_chunk")


def test_objectives_and_freeze_llm_are_constructor_settings(pe, tmp_path):
    new = PERank.from_parts("tiny-qwen2", "tiny-bert", objectives=["align"], freeze_llm=True)
    assert new.objectives == ("align",)
    assert not any(p.requires_grad for p in new.llm.parameters())
    assert all(p.requires_grad for p in new.projector.parameters())
    pe.save_pretrained(str(tmp_path))
    assert PERank.from_pretrained(str(tmp_path)).objectives == ("listmle",)  # a run's choice, not saved
    loaded = PERank.from_pretrained(str(tmp_path), objectives=("listmle", "kl"), freeze_llm=True)
    assert loaded.objectives == ("listmle", "kl") and not any(p.requires_grad for p in loaded.llm.parameters())
    assert "align_logits" in new(["q"], [PASSAGES[:2]], torch.tensor([[0, 1]]))
