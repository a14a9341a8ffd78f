# Policy Lab Assistant: `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
POLICYLAB := $(VENV)/bin/policylab
STAMP := $(VENV)/.installed
PORT ?= 8000
export POLICYLAB_DATA_DIR ?= data

.PHONY: run test setup index system-deps bench eval clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages: chromium for browser tests, tesseract for scanned PDFs.
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v tesseract >/dev/null; then \
	  echo "Installing Debian packages: chromium tesseract-ocr"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium tesseract-ocr >/dev/null; \
	fi

index: setup
	$(POLICYLAB) ingest knowledge/

run: index
	$(POLICYLAB) serve --port $(PORT)

test: setup system-deps
	$(PY) -m pytest

bench: setup
	$(PY) -m eval.bench_ingest
	$(PY) -m eval.bench_retrieval

clean:
	rm -rf data .pytest_cache
