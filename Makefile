# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates the virtual environment itself; a second run reuses it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two installs in one environment: the base (serve and index: no PyTorch) for the demo, and
# everything (training, tests, linters) for make test and make model.
BASE := $(VENV)/.installed-base
DEV := $(VENV)/.installed-dev

.PHONY: demo test lint venv model clean test-packages

venv: $(DEV)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# setup.py and the C source too: pip install -e rebuilds the cphoc extension
$(BASE): pyproject.toml setup.py cphoc/cphoc.c | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(DEV): pyproject.toml setup.py cphoc/cphoc.c | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(BASE)

lint: $(DEV)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint test-packages
	$(PY) -m pytest -q

# Debian packages the tests and make model use: Chromium for tests/e2e/test_web.py (driven by
# Playwright, which downloads nothing), the Tux Paint stamps (the demo's gallery) and WordNet 3.0
# (wordnet-base: the concept prior's class names and ancestors, read at export). Installed without
# recommends when missing; without apt-get the tests that need them skip, saying why.
test-packages:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="chromium"; \
	[ -d /usr/share/tuxpaint/stamps ] || missing="$$missing tuxpaint-stamps-default"; \
	[ -f /usr/share/wordnet/data.noun ] || missing="$$missing wordnet-base"; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo -n); \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	else echo "missing$$missing and no apt-get: the tests that need them will be skipped"; fi

# GALLERY: empty for Tux Paint's stamps (scikit-image's photos where apt can't install them),
# flickr8k for its test split from ../shared, or any folder of images.
GALLERY ?=
PORT ?= 9998

demo: $(BASE)
	$(PY) -m scripts.demo --gallery "$(GALLERY)" --port $(PORT)

# Reproduce the shipped model in models/ from ../shared/datasets/flickr8k (2 CPU cores: the
# feature cache ~15 min, training and export ~5 min; docs/concepts.md), then what is chosen on
# dev for it: the relevance line and the near duplicates' threshold (~3 min each).
model: $(DEV) test-packages
	$(PY) -m scripts.cache_features
	$(PY) -m scripts.train --out models
	$(PY) -m scripts.calibrate_relevance --write
	$(PY) -m scripts.calibrate_duplicates --write

clean:
	rm -rf $(VENV) build *.egg-info cphoc/*.so
