# The two commands of the README. Each creates .venv and installs genmodels into it when needed.
#   make demo   train a small conv VAE, then write samples, interpolations, inpainting and a
#               diversity report to runs/demo/report.md (2.3 minutes on 2 idle AMD EPYC cores,
#               once the venv exists)
#   make test   ruff + the test suite
#   make docs   the API reference from the docstrings (build/api/index.html); fails on a
#               cross-reference that resolves to nothing
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.genmodels-installed

.PHONY: demo test install lint bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	$(PY) -m genmodels.cli train configs/demo_vae.toml --out runs/demo
	$(PY) -m genmodels.cli report runs/demo
	@echo "open runs/demo/report.md"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q --durations=15

docs: $(STAMP)
	$(PY) docs/build_api.py --out build/api

bench: $(STAMP)
	$(PY) benchmarks/trainer_speed.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
