# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: setup demo test lint format bench clean train-tiny train-melody

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) ./scripts/setup.sh
	touch $(STAMP)

# The bundled tiny model (audiogen/assets/tiny): music from a text prompt, then the same
# prompt following a melody; and the symbolic path: the melody rendered by the DDSP synth.
demo: $(STAMP)
	$(PY) -m audiogen generate "a lively Irish reel for solo fiddle, 120 bpm" \
		-o demo_text.wav --duration 10 --seed 0
	$(PY) -m audiogen generate "a gentle air for solo flute" -o demo_melody.wav \
		--melody audiogen/assets/melodies/fare_you_well.mid --duration 10 --seed 0
	$(PY) -m audiogen render audiogen/assets/melodies/fare_you_well.mid -o demo.wav --instrument flute
	@echo "wrote $$(pwd)/demo_text.wav, demo_melody.wav and demo.wav"

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

# The bundled melody models (audiogen/assets/melody: markov, lstm, tiny = Transformer),
# trained on the music21 corpus tunes (CPU), then evaluated on the held-out test tunes.
# The networks were trained on in segments (warm restarts of the cosine schedule by
# --resume --set train.steps=N); the resumed runs repeat them exactly.
MELODY_RUNS ?= runs/melody
train-melody: $(STAMP)
	$(PY) -m audiogen train melody --recipe recipes/melody_markov.toml --out $(MELODY_RUNS)/markov
	$(PY) -m audiogen train melody --recipe recipes/melody_lstm.toml --out $(MELODY_RUNS)/lstm
	$(PY) -m audiogen train melody --recipe recipes/melody_transformer.toml --out $(MELODY_RUNS)/transformer
	$(PY) -m audiogen.melody.export model $(MELODY_RUNS)/markov audiogen/assets/melody/markov
	$(PY) -m audiogen.melody.export model $(MELODY_RUNS)/lstm audiogen/assets/melody/lstm
	$(PY) -m audiogen.melody.export model $(MELODY_RUNS)/transformer audiogen/assets/melody/tiny
	$(PY) -m audiogen.melody.export split recipes/melody_transformer.toml $(MELODY_RUNS)/test_midi
	$(PY) -m audiogen eval melody --data $(MELODY_RUNS)/test_midi --out $(MELODY_RUNS)/report.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo.wav demo_text.wav demo_melody.wav
