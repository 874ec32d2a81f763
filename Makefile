# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A scratch venv with every direct dependency at its lowest allowed version (make test-lowest).
LOWEST := .venv-lowest
LOWEST_PY := $(LOWEST)/bin/python
PORT ?= 8501
# Only this machine can open the app; `make run HOST=0.0.0.0` shares it with the network.
HOST ?= 127.0.0.1
# What the shared HTML map inlines to search by meaning (html_search.py reads it): npm's onnxruntime-web and
# tokenizer, copied beside the page's scripts (git-ignored); npm ci installs exactly package-lock.json.
VENDOR := explorer/mapjs/vendor
VENDOR_FILES := node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs \
	node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm \
	node_modules/@huggingface/tokenizers/dist/tokenizers.min.mjs
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-lowest lint chromium bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel on this disk; installed first so nothing pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

$(VENDOR)/.copied: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	mkdir -p $(VENDOR)
	cp $(VENDOR_FILES) $(VENDOR)/
	touch $@

run: $(STAMP) $(VENDOR)/.copied
	$(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT) --server.headless true

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

test: $(STAMP) $(VENDOR)/.copied chromium
	$(VENV)/bin/ruff check explorer tests app.py pages benchmarks tools
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-lowest

# Rebuilt from scratch when pyproject.toml changes, so nothing newer lingers from an earlier install;
# pip's cache makes the rebuild cheaper. Transitive dependencies float (pip has no lowest resolver).
$(LOWEST)/.installed: pyproject.toml tools/lowest_versions.py
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(PYTHON) tools/lowest_versions.py $(LOWEST)
	$(LOWEST_PY) -m pip install -q --upgrade pip
	$(LOWEST_PY) -m pip install -q torch==2.13.0
	$(LOWEST_PY) -m pip install -q -c $(LOWEST)/constraints.txt -e . -r $(LOWEST)/test-requirements.txt
	$(LOWEST_PY) -m pip check
	touch $@

# The fast tests against the lower bounds in pyproject.toml; ray is not installed, its tests skip.
test-lowest: $(LOWEST)/.installed
	$(LOWEST_PY) -m pip freeze | grep -iE "^($$(cut -d= -f1 $(LOWEST)/constraints.txt | paste -sd'|'))=="
	$(LOWEST_PY) -m pytest -q -m "not slow and not browser" --timeout 600

lint: $(STAMP)
	$(VENV)/bin/ruff check explorer tests app.py pages benchmarks tools

bench: $(STAMP)
	$(PY) benchmarks/quality.py

clean:
	rm -rf $(VENV) $(LOWEST) test-artifacts .pytest_cache node_modules $(VENDOR)
