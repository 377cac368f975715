# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates the virtual environment itself; a second run reuses it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint venv model clean

venv: $(INSTALLED)

# setup.py and the C source too: pip install -e rebuilds the cphoc extension
$(INSTALLED): pyproject.toml setup.py cphoc/cphoc.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

lint: $(INSTALLED)
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q

demo: $(INSTALLED)
	$(PY) -m scripts.demo

# Reproduce the shipped model in models/ from ../shared/datasets/flickr8k (2 CPU cores: ~25 min).
model: $(INSTALLED)
	$(PY) -m scripts.cache_features
	$(PY) -m scripts.train --out models

clean:
	rm -rf $(VENV) build *.egg-info cphoc/*.so
