#!/usr/bin/env bash
# Set up, then run the embedded default: a noisy-oracle agent on a built-in domain at lengths
# 1-16, scripted user, in-process tools. Prints the success-by-length table and the half-life.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/toolzoo zoo validate
.venv/bin/toolzoo run examples/quickstart.yaml --overwrite
