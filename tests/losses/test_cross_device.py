"""InfoNCE with cross-device negatives in 2 gloo processes == one process holding the global batch."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rag_retrieval.losses import InfoNCELoss, MatryoshkaLoss

B, G, D, WORLD = 3, 2, 8, 2


def global_batch():
    torch.manual_seed(0)
    return torch.randn(WORLD * B, D), torch.randn(WORLD * B * G, D)


def worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    q_all, p_all = global_batch()
    q = q_all[rank * B : (rank + 1) * B].clone().requires_grad_()
    p = p_all[rank * B * G : (rank + 1) * B * G].clone().requires_grad_()
    loss = MatryoshkaLoss(InfoNCELoss(temperature=0.1, cross_device=True), dims=[8, 4])(q, p)
    total = sum(loss.values())
    total.backward()
    torch.save({"loss": total.detach(), "q_grad": q.grad, "p_grad": p.grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_cross_device_loss_and_gradients_equal_single_process(tmp_path):
    port = 29500 + os.getpid() % 1000
    mp.spawn(worker, args=(port, str(tmp_path)), nprocs=WORLD, join=True)
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
