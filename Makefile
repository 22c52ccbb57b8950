# One command runs the main job (`make demo`), one runs the tests (`make test`).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU-only default. GPU machines: make install TORCH_CONSTRAINTS=  (see README)
TORCH_CONSTRAINTS ?= -c constraints/cpu.txt
WORK ?= work/demo

# Prefect keeps its database under work/, not in $HOME.
PREFECT_HOME ?= $(CURDIR)/work/.prefect
export PREFECT_HOME
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install demo demo-train test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml constraints/cpu.txt | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_CONSTRAINTS) "torch>=2.13,<2.15"
	$(BIN)/pip install --quiet $(TORCH_CONSTRAINTS) -e ".[dev,train]"
	touch $@

install: $(VENV)/.installed  ## create .venv and install the project with its test tools

demo: install  ## the whole DAG: tiny models + sample data, curate (six signals + S_task), train and evaluate each stage
	mkdir -p $(PREFECT_HOME)
	$(BIN)/magicvl demo --work $(WORK)

demo-train: demo  ## train-curriculum on the demo recipe (stages the demo trained are skipped: same key)
	$(BIN)/magicvl train-curriculum $(WORK)/recipe.yaml

test: install  ## lint (ruff), check the import layers (pyproject [tool.importlinter]), then run the test suite (CPU, minutes)
	mkdir -p $(PREFECT_HOME)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q tests

bench: install  ## print the benchmark tables (bench/README.md)
	mkdir -p $(PREFECT_HOME)
	$(BIN)/python -m bench.throughput
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.visual_tokens
	$(BIN)/python -m bench.vision_encoder
	$(BIN)/python -m bench.packing

lint: install
	$(BIN)/ruff check flows tasks scoring model storage tests bench

clean:
	rm -rf $(WORK) .pytest_cache
