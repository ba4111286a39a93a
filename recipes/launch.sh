#!/usr/bin/env bash
# Shared launcher of the recipes: bash recipes/launch.sh <kind> <default config> [key=value ...]
#   LAUNCHER     torchrun (default) | accelerate | deepspeed
#   NPROC        processes per node (default 1); NNODES (default 1), NODE_RANK (default 0),
#   MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default 29500): passed to the launcher
#   ACCELERATE_CONFIG  accelerate only: configs/accelerate/{ddp,fsdp,deepspeed_zero2,deepspeed_zero3}.yaml
#                      (default ddp.yaml)
#   DS_CONFIG    deepspeed only: configs/deepspeed/zero{0,1,2,3}.json (default zero2.json), given to the
#                Trainer as train.deepspeed. Several nodes: HOSTFILE (deepspeed's, "host slots=N" lines;
#                run on the first host only; NODE_RANK is not used; variables such as HF_HUB_OFFLINE
#                reach the other hosts only through a .deepspeed_env file, see the DeepSpeed docs);
#                MASTER_ADDR defaults to deepspeed's choice there, NPROC/NNODES to the hostfile's.
#                CUDA_VISIBLE_DEVICES without NPROC picks the GPUs on one node.
#   CONFIG       replaces the default config; PYTHON picks the interpreter (default .venv/bin/python)
# With torchrun, one process on one node runs plain python (no DDP wrapper for a world of 1).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=$1 default_config=$2
shift 2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-.venv/bin/python}
given_nproc=${NPROC:-} given_nnodes=${NNODES:-} given_addr=${MASTER_ADDR:-}
NPROC=${NPROC:-1} NNODES=${NNODES:-1} NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} MASTER_PORT=${MASTER_PORT:-29500}
entry=(-m rag_retrieval.cli train "$kind" --config "${CONFIG:-$default_config}")  # any name of a kind
case "${LAUNCHER:-torchrun}" in
  torchrun)
    if [ "$NPROC" = 1 ] && [ "$NNODES" = 1 ]; then
      exec "$PY" "${entry[@]}" "$@"
    fi
    exec "$PY" -m torch.distributed.run --nproc_per_node "$NPROC" --nnodes "$NNODES" --node_rank "$NODE_RANK" \
      --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" "${entry[@]}" "$@" ;;
  accelerate)
    exec "$PY" -m accelerate.commands.launch --config_file "${ACCELERATE_CONFIG:-configs/accelerate/ddp.yaml}" \
      --num_processes $((NPROC * NNODES)) --num_machines "$NNODES" --machine_rank "$NODE_RANK" \
      --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT" "${entry[@]}" "$@" ;;
  deepspeed)
    ds=(--master_port "$MASTER_PORT" --no_local_rank)
    if [ -n "$given_addr" ]; then ds+=(--master_addr "$given_addr"); fi
    if [ -n "${HOSTFILE:-}" ]; then
      ds+=(--hostfile "$HOSTFILE")
      if [ -n "$given_nnodes" ]; then ds+=(--num_nodes "$NNODES"); fi
      if [ -n "$given_nproc" ]; then ds+=(--num_gpus "$NPROC"); fi
    elif [ "$NNODES" != 1 ]; then
      echo "error: LAUNCHER=deepspeed with NNODES=$NNODES needs HOSTFILE (deepspeed starts every node from one)" >&2
      exit 2
    elif [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && [ -z "$given_nproc" ]; then
      ds+=(--include "localhost:$CUDA_VISIBLE_DEVICES")
    else
      ds+=(--num_gpus "$NPROC" --num_nodes 1)
    fi
    exec "$PY" -m deepspeed.launcher.runner "${ds[@]}" --module "${entry[@]:1}" "$@" \
      "train.deepspeed=${DS_CONFIG:-configs/deepspeed/zero2.json}" ;;
  *)
    echo "error: LAUNCHER='$LAUNCHER' is not valid; choose one of: torchrun, accelerate, deepspeed" >&2
    exit 2 ;;
esac
