"""InfoNCE with cross-device negatives in 2 gloo processes == one process holding the global batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rag_retrieval.losses import InfoNCELoss, MatryoshkaLoss

B, G, D, WORLD = 3, 2, 8, 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def global_batch():
    torch.manual_seed(0)
    return torch.randn(WORLD * B, D), torch.randn(WORLD * B * G, D)


def dense_case(rank):
    """This process's slice of the global batch and the loss (Matryoshka over InfoNCE)."""
    q_all, p_all = global_batch()
    q = q_all[rank * B : (rank + 1) * B].clone().requires_grad_()
    p = p_all[rank * B * G : (rank + 1) * B * G].clone().requires_grad_()
    return q, p, MatryoshkaLoss(InfoNCELoss(temperature=0.1, cross_device=True), dims=[8, 4])


def colbert_case(rank):
    from rag_retrieval.models.colbert import packed_maxsim

    q, p = (t.requires_grad_() for t in colbert_batch(rank))
    return q, p, InfoNCELoss(temperature=0.5, score_fn=packed_maxsim, cross_device=True)


def worker(rank, port, out_dir, case):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    q, p, loss_fn = {"dense": dense_case, "colbert": colbert_case}[case](rank)
    loss = loss_fn(q, p)
    total = sum(loss.values()) if isinstance(loss, dict) else loss
    total.backward()
    torch.save({"loss": total.detach(), "q_grad": q.grad, "p_grad": p.grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # gloo workers sometimes abort in interpreter teardown after the work is done


@pytest.mark.slow
def test_cross_device_loss_and_gradients_equal_single_process(tmp_path):
    port = free_port()
    mp.spawn(worker, args=(port, str(tmp_path), "dense"), nprocs=WORLD, join=True)
    q_all, p_all = global_batch()
    q_all.requires_grad_()
    p_all.requires_grad_()
    single = sum(MatryoshkaLoss(InfoNCELoss(temperature=0.1), dims=[8, 4])(q_all, p_all).values())
    single.backward()
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    # DDP averages gradients over processes: the global loss is the mean of the per-process losses
    assert torch.allclose(torch.stack([r["loss"] for r in ranks]).mean(), single.detach(), atol=1e-6)
    # each process's gradient also carries the other process's loss through the gathered passages;
    # divided by the world size (DDP's averaging) it equals the single-process gradient
    q_grad = torch.cat([r["q_grad"] for r in ranks]) / WORLD
    p_grad = torch.cat([r["p_grad"] for r in ranks]) / WORLD
    assert torch.allclose(q_grad, q_all.grad, atol=1e-6)
    assert torch.allclose(p_grad, p_all.grad, atol=1e-6)
    assert p_grad.abs().sum() > 0


# ColBERT: token vectors with the mask as last feature; the processes' passages have different
# lengths (dynamic padding), so the gather pads them; one process holds both, padded to the longest.
LQ, LENGTHS = 4, (5, 7)


def colbert_batch(rank):
    torch.manual_seed(10 + rank)
    q = torch.randn(B, LQ, D)
    p = torch.randn(B * G, LENGTHS[rank], D)
    q_mask = (torch.rand(B, LQ) > 0.3).float()
    p_mask = (torch.rand(B * G, LENGTHS[rank]) > 0.3).float()
    p_mask[:, 0] = 1
    return torch.cat([q * q_mask[..., None], q_mask[..., None]], -1), torch.cat([p * p_mask[..., None], p_mask[..., None]], -1)


@pytest.mark.slow
def test_colbert_cross_device_loss_equals_single_process_with_ragged_lengths(tmp_path):
    from rag_retrieval.models.colbert import packed_maxsim

    port = free_port()
    mp.spawn(worker, args=(port, str(tmp_path), "colbert"), nprocs=WORLD, join=True)
    batches = [colbert_batch(r) for r in range(WORLD)]
    longest = max(LENGTHS)
    q_all = torch.cat([q for q, _ in batches]).requires_grad_()
    p_all = torch.cat([torch.nn.functional.pad(p, (0, 0, 0, longest - p.shape[1])) for _, p in batches]).requires_grad_()
    single = InfoNCELoss(temperature=0.5, score_fn=packed_maxsim)(q_all, p_all)
    single.backward()
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert torch.allclose(torch.stack([r["loss"] for r in ranks]).mean(), single.detach(), atol=1e-6)
    assert torch.allclose(torch.cat([r["q_grad"] for r in ranks]) / WORLD, q_all.grad, atol=1e-6)
    for r in range(WORLD):
        rows = slice(r * B * G, (r + 1) * B * G)
        assert torch.allclose(ranks[r]["p_grad"] / WORLD, p_all.grad[rows, : LENGTHS[r]], atol=1e-6)
