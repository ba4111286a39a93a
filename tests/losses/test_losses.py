import math

import pytest
import torch
import torch.nn.functional as F

from rag_retrieval.config import LossArgs
from rag_retrieval.losses import CombinedLoss, InfoNCELoss, KLDistillLoss, MatryoshkaLoss, build_embedding_loss


def reps(b=3, g=2, d=8, seed=0):
    torch.manual_seed(seed)
    return F.normalize(torch.randn(b, d), dim=-1), F.normalize(torch.randn(b * g, d), dim=-1)


def test_infonce_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [1.0, 1.0]])  # B=2, G=2
    t = 0.5
    loss = InfoNCELoss(temperature=t)(q, p)
    # query 0: scores [1, .5, 0, 1] / t, positive index 0; query 1: [0, .5, 1, 1] / t, positive index 2
    l0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + 1 + math.exp(2)))
    l1 = -math.log(math.exp(2) / (1 + math.exp(1) + math.exp(2) + math.exp(2)))
    assert loss.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    own = InfoNCELoss(temperature=t, in_batch_negatives=False)(q, p)
    l0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1)))
    l1 = math.log(2)  # its own group [0, 1], [1, 1] scores 2 and 2
    assert own.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)


def test_matryoshka_with_full_dim_equals_base():
    q, p = reps()
    base = InfoNCELoss(temperature=0.05)
    wrapped = MatryoshkaLoss(base, dims=[8])(q, p)
    assert list(wrapped) == ["dim_8"] and torch.allclose(wrapped["dim_8"], base(q, p))


def test_matryoshka_truncates_renormalises_and_weights():
    q, p = reps()
    base = InfoNCELoss(temperature=0.05)
    parts = MatryoshkaLoss(base, dims=[8, 4], weights=[1.0, 0.5])(q, p)
    expected = 0.5 * base(F.normalize(q[:, :4], dim=-1), F.normalize(p[:, :4], dim=-1))
    assert torch.allclose(parts["dim_4"], expected)


def test_kl_distill_matches_definition_and_is_zero_at_teacher():
    q, p = reps(b=2, g=3)
    teacher = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    loss = KLDistillLoss(temperature=0.1, teacher_temperature=2.0)(q, p, teacher_scores=teacher)
    student = torch.stack([p.view(2, 3, -1)[i] @ q[i] for i in range(2)]) / 0.1
    target = F.softmax(teacher / 2.0, -1)
    expected = (target * (target.log() - F.log_softmax(student, -1))).sum(-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert KLDistillLoss()(scores=teacher, teacher_scores=teacher).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="needs teacher scores"):
        KLDistillLoss()(q, p)


def test_build_loss_from_config_combines_and_wraps():
    args = LossArgs(name="infonce+kl_distill", matryoshka_dims=[8, 4], kl_weight=0.5)
    loss = build_embedding_loss(args)
    assert isinstance(loss, MatryoshkaLoss) and isinstance(loss.base, CombinedLoss)
    q, p = reps(b=2, g=2)
    parts = loss(q, p, teacher_scores=torch.tensor([[1.0, 0.0], [0.8, 0.1]]))
    assert set(parts) == {"dim_8/infonce", "dim_8/kl_distill", "dim_4/infonce", "dim_4/kl_distill"}
