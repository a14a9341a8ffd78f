# Policy Lab Assistant: `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
POLICYLAB := $(VENV)/bin/policylab
STAMP := $(VENV)/.installed
PORT ?= 8000
export POLICYLAB_DATA_DIR ?= data

.PHONY: run test setup index system-deps bench eval eval-validation eval-holdout eval-blind eval-offtopic clean llm llm-runtime model test-models bench-llm load-test reliability

UV_VERSION := 0.13.9
# uv installs the pinned set from an empty cache in ~11 s where pip takes ~170 s (docs/benchmarks.md, "First make run");
# where uv cannot be installed or cannot reach the index (a proxy it does not trust, say), pip installs the same set.
# uv reads its own settings: pip's index and certificate bundle are passed on where they are set.
UV_ENV := $(if $(PIP_INDEX_URL),UV_INDEX_URL=$(PIP_INDEX_URL)) $(if $(PIP_CERT),SSL_CERT_FILE=$(PIP_CERT))
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	@if $(PIP) install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)' && \
	  $(UV_ENV) $(VENV)/bin/uv pip install --quiet --python $(PY) -c constraints.txt -e '.[test]'; then \
	  echo "Dependencies installed with uv."; \
	else \
	  echo "uv could not install the dependencies; installing them with pip (a few minutes from an empty cache)."; \
	  $(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'; \
	fi
	touch $(STAMP)

setup: $(STAMP)

# Debian packages: chromium for browser tests, tesseract for scanned PDFs.
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v tesseract >/dev/null; then \
	  echo "Installing Debian packages: chromium tesseract-ocr"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium tesseract-ocr >/dev/null; \
	fi

# Local chat model: `make llm` = the llama.cpp runtime + a GGUF model (LLM_MODEL=smollm2-135m for a quick one).
LLM_MODEL ?= qwen2.5-coder-1.5b
LLAMA_VERSION := 0.3.36
# llama-cpp-python has no binary wheel: it is built once per machine into LLAMA_WHEELS, for the CPU
# features the machine reports, never AMX: a -march=native build on a CPU that reports AMX crashes in VMs
# that do not enable it (ldtilecfg faults on the first token). AVX-512 with VNNI, where the CPU has it,
# reads prompts ~1.4x faster than AVX2 (docs/models.md); pip's own wheel cache cannot tell builds apart.
LLAMA_CPU ?= $(shell grep -qw avx512_vnni /proc/cpuinfo 2>/dev/null && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && echo avx512 || echo avx2)
LLM_STAMP := $(VENV)/.llm-runtime-$(LLAMA_CPU)
LLAMA_WHEELS ?= $(HOME)/.cache/policylab/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_CPU)
LLAMA_AVX2_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
ifeq ($(LLAMA_CPU),avx512)
LLAMA_CMAKE_ARGS ?= $(LLAMA_AVX2_ARGS) -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX_VNNI=ON \
  $(if $(shell grep -qw avx512vbmi /proc/cpuinfo && echo y),-DGGML_AVX512_VBMI=ON) \
  $(if $(shell grep -qw avx512_bf16 /proc/cpuinfo && echo y),-DGGML_AVX512_BF16=ON)
else
LLAMA_CMAKE_ARGS ?= $(LLAMA_AVX2_ARGS) -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF
endif

$(LLM_STAMP): $(STAMP) constraints.txt
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "Building llama-cpp-python $(LLAMA_VERSION) ($(LLAMA_CPU)) from source (about 3.5 minutes on 2 idle cores, longer when busy) into $(LLAMA_WHEELS)"; \
	  mkdir -p $(LLAMA_WHEELS) && \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	    $(PIP) wheel --quiet --no-cache-dir --no-deps --disable-pip-version-check -w $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_VERSION)'; \
	fi
	$(PIP) install --quiet --disable-pip-version-check --no-deps --force-reinstall --no-index --find-links $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_VERSION)'
	$(PIP) install --quiet --disable-pip-version-check --find-links $(LLAMA_WHEELS) -c constraints.txt 'llama-cpp-python[server]==$(LLAMA_VERSION)'
	$(PY) -c "import llama_cpp.server.app"
	touch $@

llm-runtime: $(LLM_STAMP)

model: $(STAMP)
	$(PY) scripts/install_model.py $(LLM_MODEL)

llm: llm-runtime model

# Small models for the tests that need a real model server but not a good writer (lifecycle, crash, content).
TEST_MODELS := smollm2-135m qwen2.5-coder-0.5b
test-models: $(STAMP)
	@for name in $(TEST_MODELS); do $(PY) scripts/install_model.py $$name || exit 1; done

bench-llm: llm-runtime
	$(PY) -m eval.bench_llm

index: setup
	$(POLICYLAB) ingest knowledge/

run: index
	@if [ ! -f $(LLM_STAMP) ] || ! $(PY) -c "import sys; from assistant.settings import get_settings; sys.exit(not get_settings().local_model_path.is_file())"; then \
	  mkdir -p $(POLICYLAB_DATA_DIR)/logs; \
	  echo "Installing the local model in the background (log: $(POLICYLAB_DATA_DIR)/logs/llm-install.log)."; \
	  echo "Until it is ready, answers are extractive (quoted sentences, labelled as such)."; \
	  nohup $(MAKE) --no-print-directory llm > $(POLICYLAB_DATA_DIR)/logs/llm-install.log 2>&1 & \
	fi
	$(POLICYLAB) serve --port $(PORT)

test: setup system-deps llm test-models
	$(PY) -m pytest

bench: setup
	$(PY) -m eval.bench_ingest
	$(PY) -m eval.bench_retrieval

# Dev-set evaluation against the naive LangChain baseline and BM25 → reports/dev/ (docs/evaluation.md).
# Uses the chat model when one is installed; EVAL_BACKEND=extractive evaluates without one.
EVAL_BACKEND ?= auto
eval: setup
	$(POLICYLAB) eval --questions eval/questions/dev.jsonl --corpus knowledge --compare baseline --out reports/dev --backend $(EVAL_BACKEND)

# The same on our own validation set (long multi-facet briefs and drafts written blind from the corpus) → reports/validation/.
eval-validation: setup
	$(POLICYLAB) eval --questions eval/questions/validation.jsonl --corpus knowledge --compare baseline --out reports/validation --backend $(EVAL_BACKEND)

# The second blind set (mirrors the dev set's mix; run it to check a change generalises, never tune to it) → reports/holdout/.
eval-holdout: setup
	$(POLICYLAB) eval --questions eval/questions/holdout.jsonl --corpus knowledge --compare baseline --out reports/holdout --backend $(EVAL_BACKEND)

# Four more blind sets (written on 2026-11-27 by helpers that saw only the corpus: 24, 20 and 24 requests, mostly long briefs
# and drafts in five languages; then 26 mirroring the dev set's mix, mostly short questions) → reports/blind2/ … reports/blind5/.
eval-blind: setup
	$(POLICYLAB) eval --questions eval/questions/blind2.jsonl --corpus knowledge --compare baseline --out reports/blind2 --backend $(EVAL_BACKEND)
	$(POLICYLAB) eval --questions eval/questions/blind3.jsonl --corpus knowledge --compare baseline --out reports/blind3 --backend $(EVAL_BACKEND)
	$(POLICYLAB) eval --questions eval/questions/blind4.jsonl --corpus knowledge --compare baseline --out reports/blind4 --backend $(EVAL_BACKEND)
	$(POLICYLAB) eval --questions eval/questions/blind5.jsonl --corpus knowledge --compare baseline --out reports/blind5 --backend $(EVAL_BACKEND)

# Requests from outside the library (general knowledge, neighbouring policy fields, off-topic briefs and drafts; none answerable):
# the share refused as "not in the library" -> reports/offtopic/, reports/offtopic_blind/.
eval-offtopic: setup
	$(POLICYLAB) eval --questions eval/questions/offtopic.jsonl --corpus knowledge --compare none --out reports/offtopic --backend $(EVAL_BACKEND)
	$(POLICYLAB) eval --questions eval/questions/offtopic_blind.jsonl --corpus knowledge --compare none --out reports/offtopic_blind --backend $(EVAL_BACKEND)

# Bounded loopback load test (20 chats: 60 s warm-up, then 60 s measured, on the extractive backend; then 3 at once on a local model
# when installed) -> reports/load/load_test.json. LOAD_ARGS=--skip-model for run 1 only.
LOAD_ARGS ?=
load-test: setup
	$(PY) -m eval.load_test $(LOAD_ARGS)

# Reliability and security tests, one file at a time -> docs/reliability.md (with the last load-test figures).
# RELIABILITY_ARGS=--browser adds the Chromium tests; --no-run only rewrites the document.
RELIABILITY_ARGS ?=
reliability: setup
	$(PY) -m eval.reliability_report $(RELIABILITY_ARGS)

clean:
	rm -rf data .pytest_cache

# Co-drafting rooms: live delivery p50/p95 over 50 posts (two Chromium users) and time to synthesise from
# 10 contributions (embedded model when installed, else extractive) -> docs/benchmarks.md "Rooms".
.PHONY: bench-rooms
bench-rooms: setup system-deps
	mkdir -p reports && $(PY) -m eval.bench_rooms --json-out reports/bench-rooms.json
