# The two set-up commands of the README:
#   make run    create .venv, install, prepare the model folder, build the index if none, serve on 127.0.0.1:8000
#   make test   the same set-up, then the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL := models/use-multilingual-v3
REFINER := models/role-refiner
DETECTOR := models/concept-detector
READER := models/needs-reader
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup index bench clean-index browser

run: setup
	$(BIN)/nlp-service serve --host $(HOST) --port $(PORT)

test: setup browser
	$(BIN)/python -m pytest

# tests/test_web_ui.py drives Debian's chromium headless through /usr/bin/chromedriver. It must run, never
# skip, so a machine without them gets them here, and a failed install stops `make test` loudly.
# (fonts-wqy-microhei, 1.6 MB: without a CJK font the Chinese screenshots show empty boxes.)
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -f $(CJK_FONT) ]; then exit 0; fi; \
	echo "installing Debian's chromium and chromium-driver for the browser test (tests/test_web_ui.py)"; \
	SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	{ $$SUDO apt-get update && \
	  $$SUDO apt-get install -y --no-install-recommends chromium chromium-driver fonts-wqy-microhei; } \
	  || { echo "ERROR: installing chromium and chromium-driver with apt-get failed; the browser test cannot run" >&2; exit 1; }; \
	if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "ERROR: /usr/bin/chromium or /usr/bin/chromedriver is still missing after apt-get install" >&2; exit 1; fi

setup: $(STAMP) $(MODEL)/modules.json $(REFINER)/meta.json $(DETECTOR)/meta.json $(READER)/meta.json index

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(MODEL)/modules.json: $(STAMP)
	$(BIN)/nlp-service prepare-model --target $(MODEL)

# The learned correction of the rule roles, trained on the dev and fresh gold sets (never the test part);
# retrained when the rules, the tagger, the taxonomy or those gold files change.
$(REFINER)/meta.json: $(STAMP) $(MODEL)/modules.json nlp_service/extract/roles.py nlp_service/extract/tagger.py \
		nlp_service/extract/role_model.py corpus/eval/dev.jsonl $(wildcard corpus/eval/fresh/*.jsonl) \
		$(wildcard corpus/taxonomy/concepts/*.jsonl)
	$(BIN)/nlp-service train-roles

# The concept detector (concepts a clause describes without a label), trained on the same gold files; retrained
# when its code, the clause splitter, the tagger, the taxonomy or those gold files change.
$(DETECTOR)/meta.json: $(STAMP) $(MODEL)/modules.json nlp_service/extract/concept_model.py \
		nlp_service/extract/segment.py nlp_service/extract/tagger.py corpus/eval/dev.jsonl \
		$(wildcard corpus/eval/fresh/*.jsonl) $(wildcard corpus/taxonomy/concepts/*.jsonl)
	$(BIN)/nlp-service train-concepts

# The deliverable reader (which clause of a request names its deliverable), trained on the same gold files in
# seconds; retrained when its code, the clause splitter or those gold files change.
$(READER)/meta.json: $(STAMP) $(MODEL)/modules.json nlp_service/extract/needs_model.py \
		nlp_service/extract/clause_features.py nlp_service/extract/segment.py corpus/eval/dev.jsonl \
		$(wildcard corpus/eval/fresh/*.jsonl)
	$(BIN)/nlp-service train-needs

index: $(STAMP) $(MODEL)/modules.json $(REFINER)/meta.json $(DETECTOR)/meta.json $(READER)/meta.json
	$(BIN)/nlp-service rebuild --if-missing

clean-index:
	rm -rf var/index

bench: setup
	$(BIN)/python bench/run.py
