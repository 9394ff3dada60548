# The two commands of the README. Each creates .venv and installs genmodels into it when needed.
#   make demo   train the CNN classifier briefly and write its figures to runs/demo
#   make test   ruff + the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.genmodels-installed

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m genmodels.cli train configs/mnist_cnn.toml train.epochs=1 data.subset=12800 \
		train.figure_every=50 --out runs/demo
	$(PY) -m genmodels.cli accuracy runs/demo
	@echo "figures: runs/demo/metrics.png runs/demo/figures/"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/trainer_speed.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
