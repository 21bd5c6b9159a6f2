# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: setup demo test lint format bench clean train-tiny

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) ./scripts/setup.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m audiogen render audiogen/assets/melodies/fare_you_well.mid -o demo.wav --instrument flute
	@echo "wrote $$(pwd)/demo.wav"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n 2 --dist loadfile -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/bench_render.py

# Retrain the bundled tiny model from scratch (corpus, codec, tokens, LM) on CPU; see README.
train-tiny: $(STAMP)
	PY=$(PY) ./scripts/train_tiny.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo.wav
