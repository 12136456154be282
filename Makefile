# The two set-up commands of the README:
#   make run    create .venv, install, prepare the model folder, build the index if none, serve on 127.0.0.1:8000
#   make test   the same set-up, then the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL := models/use-multilingual-v3
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup index bench clean-index

run: setup
	$(BIN)/nlp-service serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest

setup: $(STAMP) $(MODEL)/modules.json index

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(MODEL)/modules.json: $(STAMP)
	$(BIN)/nlp-service prepare-model --target $(MODEL)

index: $(STAMP) $(MODEL)/modules.json
	$(BIN)/nlp-service rebuild --if-missing

clean-index:
	rm -rf var/index

bench: setup
	$(BIN)/python bench/run.py
