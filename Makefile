# mtasts: `make demo` runs the main job on the lab; `make test` runs every test.
# Both create the environment first (uv, from PyPI, into .venv). Benchmarks are not a
# target: each needs its peer installed beside the project; docs/benchmarks.md gives the
# exact command of every figure.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(HOME)/.local/bin/uv
endif
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
RUN := $(UV) run --frozen --no-sync

.PHONY: demo test lint typecheck unit env clean docs

$(UV):
	$(PYTHON) -m pip install --user --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --group dev
	@touch $@

env: .venv/.synced

demo: .venv/.synced
	$(RUN) bash examples/demo.sh

lint: .venv/.synced
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench
	$(RUN) lint-imports

# docs generated from the code (a test fails when they are out of date)
docs: .venv/.synced
	$(RUN) python -m mtasts.settings.docs > docs/configuration.md
	$(RUN) python -m mtasts.settings.docs --example > contrib/mtasts.toml

typecheck: .venv/.synced
	$(RUN) mypy

unit: .venv/.synced
	$(RUN) pytest --cov --cov-report=term $(PYTEST_ARGS)

test: lint typecheck unit

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
