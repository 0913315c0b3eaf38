# Customer Intelligence Workbench — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PARAMS ?= default
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install reports test test-fast test-browser pdf data lab bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-13s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m helpers.reporting.widget_assets fetch
	@touch $@

install: $(STAMP) ## Create .venv, install the workbench with its dev tools and fetch the offline widget renderer

reports: $(STAMP) ## Install, build the sample data and render every notebook to reports/ (PARAMS=default)
	$(BIN)/python -m helpers.run --params $(PARAMS)

test: $(STAMP) ## Run the whole test suite (includes the notebooks end to end on the tiny `ci` parameters)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP) ## Tests without the end-to-end notebook runs
	$(BIN)/python -m pytest -q -m "not notebooks"

test-browser: $(STAMP) ## Open the reports of `make reports` in headless Chromium (screenshots to reports/screenshots/)
	CIW_BROWSER_REPORTS=reports $(BIN)/python -m pytest -q tests/test_browser.py

pdf: $(STAMP) ## Re-render the executive summary and print it to reports/summary.pdf (needs Chromium)
	$(BIN)/python -m helpers.run --params $(PARAMS) --only 07 --pdf

data: $(STAMP) ## Generate only the sample data into data/raw (and truth into data/truth)
	$(BIN)/python -m helpers.sample.synthetic

lab: $(STAMP) ## Start JupyterLab on the notebooks (also as root, e.g. in a container)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: $(STAMP) ## Run the benchmarks in benchmarks/
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## Remove generated data and reports (keeps data/raw/cdnow and .venv)
	rm -rf data/truth
	find data/processed reports -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
	find data/raw -mindepth 1 -maxdepth 1 ! -name cdnow ! -name .gitkeep -exec rm -rf {} +
