# The README's two commands: `make report` (the main job) and `make test` (the whole test suite).
# Each creates or reuses a local virtual environment (.venv) from the pinned versions in requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kvarus-installed
OUT ?= report
SCALE ?= 100000

.PHONY: venv report test lint docs notebooks benchmark clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

report: $(STAMP)
	$(BIN)/kvarus-research report --out $(OUT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/ruff format --check src tests benchmarks

# pytest's exit code 5 means "no tests collected": that is a failure of the suite, reported as such.
test: $(STAMP) lint
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .site
	$(BIN)/python docs/hooks/check_site.py .site

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .site
	$(BIN)/python docs/hooks/check_site.py .site

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run.py --scale $(SCALE)

clean:
	rm -rf $(VENV) .site report .pytest_cache
