# Every target creates .venv and installs the pinned dependencies itself: a fresh clone needs nothing else.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: demo test lint typecheck unit bench sam clean venv screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The ASL linter's schema check runs asl-validator (npm). Without Node.js the linter skips that check and says so.
$(NODE_STAMP): package.json
	@if command -v npm >/dev/null 2>&1; then npm install --no-audit --no-fund --silent && touch $(NODE_STAMP); \
	else echo "npm not found: the ASL linter skips its schema check (install Node.js and npm for it)"; fi

demo: $(STAMP)
	$(BIN)/hyperpod-autoscaler sandbox --report reports/demo

# docs/img/report.png, the README's picture of the demo's report: headless Chromium (Debian: apt-get install chromium)
# on reports/demo/index.html, after a `make demo` when there is none. Offline: no network, no profile kept.
CHROMIUM ?= chromium
screenshots: $(STAMP)
	test -f reports/demo/index.html || $(MAKE) demo
	mkdir -p docs/img
	profile=$$(mktemp -d) && $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	  --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$$profile \
	  --hide-scrollbars --window-size=1400,3300 --screenshot=$(CURDIR)/docs/img/report.png \
	  file://$(CURDIR)/reports/demo/index.html 2>/dev/null; status=$$?; rm -rf $$profile; exit $$status

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m hpa_testkit.lint_asl statemachines/*.asl.json

typecheck: $(STAMP)
	$(BIN)/mypy layers/core/hyperpod_autoscaler

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# `sam validate --lint` and `sam build` (no container) in a venv of their own: the SAM CLI is ~330 MB and `sam build`
# needs a python3.12 first on PATH (the venv's). Not part of `make test`: it installs from PyPI and adds a minute.
SAM_VENV := .venv-sam
PY312 ?= python3.12
SAM_ENV := PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0

sam:
	test -x $(SAM_VENV)/bin/sam || ($(PY312) -m venv $(SAM_VENV) && $(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0)
	$(SAM_ENV) sam validate --lint --region us-west-2
	$(SAM_ENV) sam build --build-dir build/sam --region us-west-2

clean:
	rm -rf $(VENV) $(SAM_VENV) node_modules reports build .pytest_cache .mypy_cache .ruff_cache
