# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates the virtual environment itself; a second run reuses it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint venv model clean browser

venv: $(INSTALLED)

# setup.py and the C source too: pip install -e rebuilds the cphoc extension
$(INSTALLED): pyproject.toml setup.py cphoc/cphoc.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

lint: $(INSTALLED)
	$(PY) -m ruff check .

test: lint browser
	$(PY) -m pytest -q

# Headless Chromium for tests/test_web.py: Debian's package, driven by Playwright (which downloads
# nothing). Does nothing when /usr/bin/chromium is there; without apt-get the browser tests skip.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends chromium; \
	else echo "no /usr/bin/chromium and no apt-get: the browser tests will be skipped"; fi

# GALLERY: empty for Tux Paint's stamps (scikit-image's photos where apt can't install them),
# flickr8k for its test split from ../shared, or any folder of images.
GALLERY ?=
PORT ?= 9998

demo: $(INSTALLED)
	$(PY) -m scripts.demo --gallery "$(GALLERY)" --port $(PORT)

# Reproduce the shipped model in models/ from ../shared/datasets/flickr8k (2 CPU cores: ~25 min).
model: $(INSTALLED)
	$(PY) -m scripts.cache_features
	$(PY) -m scripts.train --out models

clean:
	rm -rf $(VENV) build *.egg-info cphoc/*.so
