"""Each ranking loss against a hand computation on a small case."""

import math

import pytest
import torch

from rag_retrieval.config import LossArgs
from rag_retrieval.losses import (CombinedLoss, LambdaLoss, ListMLELoss, ListNetLoss, ListwiseCELoss, PointwiseBCELoss,
                                  PointwiseMSELoss, RankNetLoss, build_ranking_loss)

S = torch.tensor([2.0, 0.5, -1.0])  # one query, G=3, flattened as the model returns them
L = torch.tensor([[1.0, 0.0, 0.0]])


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_bce_hard_and_soft_labels():
    expected = -(math.log(sig(2.0)) + math.log(1 - sig(0.5)) + math.log(1 - sig(-1.0))) / 3
    assert PointwiseBCELoss()(S, L).item() == pytest.approx(expected, rel=1e-6)
    soft = torch.tensor([[0.8, 0.3, 0.0]])
    expected = -((0.8 * math.log(sig(2)) + 0.2 * math.log(1 - sig(2))) + (0.3 * math.log(sig(0.5)) + 0.7 * math.log(
        1 - sig(0.5))) + math.log(1 - sig(-1))) / 3
    assert PointwiseBCELoss()(S, soft).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]"):
        PointwiseBCELoss()(S, torch.tensor([[2.0, 1.0, 0.0]]))


def test_mse_against_labels_and_teacher():
    assert PointwiseMSELoss()(S, L).item() == pytest.approx(((2 - 1) ** 2 + 0.25 + 1) / 3)
    teacher = torch.tensor([[1.0, 1.0, 1.0]])
    assert PointwiseMSELoss()(S, L, teacher_scores=teacher).item() == pytest.approx((1 + 0.25 + 4) / 3)


def test_ranknet_label_difference_weighted():
    graded = torch.tensor([[2.0, 1.0, 0.0]])
    # pairs (0,1) w=1, (0,2) w=2, (1,2) w=1; mean over the 3 pairs
    sp = lambda x: math.log(1 + math.exp(-x))  # noqa: E731
    expected = (1 * sp(1.5) + 2 * sp(3.0) + 1 * sp(1.5)) / 3
    assert RankNetLoss()(S, graded).item() == pytest.approx(expected, rel=1e-6)


def test_listwise_ce_is_softmax_cross_entropy():
    expected = -(2.0 - math.log(math.exp(2) + math.exp(0.5) + math.exp(-1)))
    assert ListwiseCELoss()(S, L).item() == pytest.approx(expected, rel=1e-6)
    two_pos = torch.tensor([[1.0, 1.0, 0.0]])  # target 1/2, 1/2, 0
    lse = math.log(math.exp(2) + math.exp(0.5) + math.exp(-1))
    assert ListwiseCELoss()(S, two_pos).item() == pytest.approx(-0.5 * ((2 - lse) + (0.5 - lse)), rel=1e-6)


def test_listnet_top_one():
    graded = torch.tensor([[2.0, 1.0, 0.0]])
    z = math.exp(2) + math.exp(1) + 1
    target = [math.exp(2) / z, math.exp(1) / z, 1 / z]
    lse = math.log(math.exp(2) + math.exp(0.5) + math.exp(-1))
    expected = -sum(t * (s - lse) for t, s in zip(target, [2.0, 0.5, -1.0]))
    assert ListNetLoss()(S, graded).item() == pytest.approx(expected, rel=1e-6)


def test_listmle_plackett_luce():
    graded = torch.tensor([[0.0, 2.0, 1.0]])  # target order: doc1, doc2, doc0
    s1, s2, s0 = 0.5, -1.0, 2.0
    expected = (math.log(math.exp(s1) + math.exp(s2) + math.exp(s0)) - s1) + (math.log(math.exp(s2) + math.exp(s0)) - s2)
    assert ListMLELoss()(S, graded).item() == pytest.approx(expected, rel=1e-6)


def test_lambda_loss_ndcg_weighted():
    graded = torch.tensor([[0.0, 1.0, 0.0]])  # the relevant doc is ranked 2nd by the scores
    # gains: 0, 1, 0; ranks by score: doc0 1st, doc1 2nd, doc2 3rd; IDCG = 1
    # valid pairs: (1,0) and (1,2); |dNDCG| = |1/log2(3) - 1| and |1/log2(3) - 1/log2(4)|
    d10, d12 = abs(1 / math.log2(3) - 1), abs(1 / math.log2(3) - 0.5)
    sp = lambda x: math.log(1 + math.exp(-x))  # noqa: E731
    expected = (d10 * sp(0.5 - 2.0) + d12 * sp(0.5 + 1.0)) / 2
    assert LambdaLoss()(S, graded).item() == pytest.approx(expected, rel=1e-6)


def test_kl_distill_and_combination_from_config():
    loss = build_ranking_loss(LossArgs(name="listwise_ce+kl_distill", kl_weight=0.5))
    assert isinstance(loss, CombinedLoss)
    teacher = torch.tensor([[3.0, 0.0, 0.0]])
    parts = loss(scores=S, labels=L, teacher_scores=teacher)  # as the trainer calls it
    p = torch.softmax(teacher, -1)
    q = torch.log_softmax(S.view(1, 3), -1)
    assert parts["kl_distill"].item() == pytest.approx(0.5 * (p * (p.log() - q)).sum().item(), rel=1e-5)
    assert build_ranking_loss(LossArgs(name="listwise_ce")).temperature == 1.0
