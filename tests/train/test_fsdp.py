"""FSDP: the shipped accelerate config's transformer-based auto-wrap finds the layer class of every
kind's model (our wrappers expose the transformers model's ``_no_split_modules``), and a model
sharded that way over 2 gloo processes gets the gradients of one process holding the global batch
and evaluates (through training's ``EvaluatorGroup``, which gathers the root's weights) to the
unsharded model's outputs.

accelerate 1.15 turns FSDP on only for GPU-type distributed states (a CPU launch silently runs
DDP), so the Trainer's FSDP path itself needs GPUs; here FSDP2 ``fully_shard`` is applied by hand
with accelerate's own wrap policy.
"""

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import ROOT

QUERIES = ["web browser", "image tool", "text editor", "c compiler"]
DOCS = [["Firefox is a web browser.", "GCC compiles C.", "Vim edits text.", "Resize images."]] * 4
GROUP = len(DOCS[0])


def kind_models():
    from rag_retrieval.models import BiEncoder, ColBERT, CrossEncoder, LLMReranker
    from rag_retrieval.models.pe_rank import PERank

    return {"embedding": lambda: BiEncoder.from_pretrained("tiny-bert"),
            "colbert": lambda: ColBERT.from_pretrained("tiny-bert", dim=8),
            "reranker": lambda: CrossEncoder.from_pretrained("tiny-bert"),
            "llm_reranker": lambda: LLMReranker.from_pretrained("tiny-qwen2"),
            "llm_reranker_lora": lambda: LLMReranker.from_pretrained("tiny-qwen2", lora={"r": 4}),
            "pe_rank": lambda: PERank.from_parts("tiny-qwen2", "tiny-bert")}


def wrap_policy(model):
    """accelerate's FSDP2 auto-wrap policy for ``model`` from configs/accelerate/fsdp.yaml."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy

    fsdp = load_config_from_file(os.path.join(ROOT, "configs/accelerate/fsdp.yaml")).fsdp_config
    plugin = FullyShardedDataParallelPlugin(fsdp_version=fsdp["fsdp_version"],
                                            auto_wrap_policy=fsdp["fsdp_auto_wrap_policy"].lower())
    return fsdp2_prepare_auto_wrap_policy(plugin, model)


@pytest.mark.parametrize("kind", list(kind_models()))
def test_shipped_fsdp_config_wraps_each_kinds_layer_class(kind):
    model = kind_models()[kind]()
    policy = wrap_policy(model)
    wrapped = [m for m in model.modules() if policy(m)]
    layer = "Qwen2DecoderLayer" if kind.startswith("llm") else "BertLayer"
    assert layer in model._no_split_modules
    assert sum(type(m).__name__ == layer for m in wrapped) == 2  # both layers of the tiny model
    if kind == "pe_rank":
        assert {"Qwen2DecoderLayer", "BertLayer"} <= {type(m).__name__ for m in wrapped}


def test_launch_conflicts_fail_before_loading(tmp_path, monkeypatch):
    from rag_retrieval.config import ConfigError
    from rag_retrieval.train.reranker import main

    args = ["--config", "configs/tests/reranker_tiny.yaml", f"train.output_dir={tmp_path}",
            "train.deepspeed=configs/deepspeed/zero2.json"]
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(ConfigError, match="train.deepspeed=configs/deepspeed/zero2.json under an accelerate FSDP"):
        main(args)
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", "configs/deepspeed/zero3.json")
    with pytest.raises(ConfigError, match="launched DeepSpeed with configs/deepspeed/zero3.json"):
        main(args)
    with pytest.raises(ConfigError, match="model.merge_lora=true with DeepSpeed ZeRO-3"):  # sharded at save time
        main([*args[:-1], "model.use_lora=true"])
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    with pytest.raises(ConfigError, match="model.merge_lora=true with DeepSpeed ZeRO-3"):
        main([*args[:-1], "train.deepspeed=configs/deepspeed/zero3.json", "model.use_lora=true"])
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(ConfigError, match="model.merge_lora=true with FSDP"):
        main([*args[:-1], "model.use_lora=true"])


def listwise_loss(kind, model, queries, docs):
    """Listwise CE over each query's group, the mean over the queries given."""
    flat = [d for group in docs for d in group]
    if kind == "embedding":
        q = model(query=model.tokenize(queries, 16))["q_reps"]
        p = model(passage=model.tokenize(flat, 16))["p_reps"].view(len(queries), GROUP, -1)
        scores = torch.einsum("qd,qgd->qg", q, p)
    else:
        features = model.tokenize([q for q in queries for _ in range(GROUP)], flat)
        scores = model(**features)["scores"].view(len(queries), GROUP)
    return F.cross_entropy(scores, torch.zeros(len(queries), dtype=torch.long))


def inference(kind, model):
    """What evaluation computes: embeddings, or scores (the packed forward falls back when sharded)."""
    if kind == "embedding":
        return model.encode_queries(QUERIES)
    return torch.tensor(model.compute_score([(q, d) for q in QUERIES for d in DOCS[0]]))


def build(kind):
    torch.manual_seed(0)
    return kind_models()[kind]()


def sharded_run(kind: str, out: str) -> None:
    """Worker (under torchrun): shard with the shipped policy, each rank takes half the queries;
    then evaluate through the evaluator group training uses (it gathers the root's weights)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from rag_retrieval.eval.evaluators import EvaluatorGroup

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    model = build(kind)
    policy = wrap_policy(model)
    for module in [m for m in model.modules() if policy(m)]:
        fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    share = len(QUERIES) // world
    listwise_loss(kind, model, QUERIES[rank * share:(rank + 1) * share],
                  DOCS[rank * share:(rank + 1) * share]).backward()
    grads = {n: p.grad.full_tensor() for n, p in model.named_parameters() if p.grad is not None}
    outputs = EvaluatorGroup([lambda m: {"outputs": inference(kind, m)}])(model.eval())["outputs"]
    if rank == 0:
        torch.save({"grads": grads, "inference": outputs}, out)
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["embedding", "reranker", "llm_reranker"])
def test_fsdp2_sharded_gradients_and_evaluation_equal_one_process(kind, tmp_path):
    out = tmp_path / "sharded.pt"
    cmd = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", "2", "--master_port",
           str(24000 + 10 * (os.getpid() % 100) + ["embedding", "reranker", "llm_reranker"].index(kind)),
           "-m", "tests.train.test_fsdp", kind, str(out)]
    run = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1"),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    sharded = torch.load(out, weights_only=True)
    model = build(kind)
    listwise_loss(kind, model, QUERIES, DOCS).backward()
    expected = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert expected and sharded["grads"].keys() == expected.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(sharded["grads"][name], grad, atol=1e-6, rtol=1e-4, msg=name)
    torch.testing.assert_close(sharded["inference"], inference(kind, model.eval()), atol=1e-5, rtol=1e-4)


if __name__ == "__main__":
    sharded_run(sys.argv[1], sys.argv[2])
