#!/usr/bin/env bash
# Reproduce the bundled tiny model (audiogen/assets/tiny) from scratch on CPU:
# corpus -> codec_tiny -> tokens -> lm_tiny -> generator directory. Every stage resumes
# where it stopped when run again. Prints how long each stage took.
#   RUNS=runs/tiny CORPUS=runs/tiny/corpus OUT=audiogen/assets/tiny scripts/train_tiny.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs/tiny}
CORPUS=${CORPUS:-$RUNS/corpus}
OUT=${OUT:-audiogen/assets/tiny}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # oversubscribed OpenMP threads stall on shared CPUs
ag() { "$PY" -m audiogen "$@"; }
stage() { printf '== %s (%s)\n' "$1" "$(date +%T)"; STAGE_T0=$(date +%s); }
done_() { printf '== %s took %d s\n' "$1" $(($(date +%s) - STAGE_T0)); }
T0=$(date +%s)
mkdir -p "$RUNS"

stage corpus
ag data build-corpus --source music21:bach --source music21:oneills --source music21:essen \
    --source music21:ryans --source music21:nottingham --renderer fluidsynth --limit 80 \
    --out "$CORPUS"
done_ corpus

resume() { [ -f "$1/checkpoints/latest" ] && echo --resume || true; }

stage codec
# shellcheck disable=SC2046
ag train codec --recipe recipes/codec_tiny.toml --out "$RUNS/codec" $(resume "$RUNS/codec") \
    --set data.manifest="$CORPUS/manifest.jsonl" --set train.progress=false
done_ codec

stage refit
# The bundle uses the step-3000 checkpoint: the end of the recipe's autoencoder warm-up,
# before its GAN phase (keep_last in the recipe keeps it), with the codebooks fitted by
# k-means on the trained encoder's output (README, codec quality).
CODEC="$RUNS/codec_refit"
[ -f "$CODEC/model.safetensors" ] || ag codec refit --codec "$RUNS/codec/checkpoints/step_003000" \
    --manifest "$CORPUS/manifest.jsonl" --out "$CODEC"
done_ refit

stage tokenize
ag tokenize "$CORPUS/manifest.jsonl" --codec "$CODEC" --out "$RUNS/tokens"
done_ tokenize

stage lm
# shellcheck disable=SC2046
ag train lm --recipe recipes/lm_tiny.toml --out "$RUNS/lm" $(resume "$RUNS/lm") \
    --set data.tokens="$RUNS/tokens" --set train.progress=false
done_ lm

stage lm-more
# A second cosine cycle from the 1600-step weights (fresh AdamW, peak lr 6e-4, other
# windows): held-out cross-entropy 4.46 -> 4.14 (README, bundled model).
# shellcheck disable=SC2046
ag train lm --recipe recipes/lm_tiny.toml --out "$RUNS/lm_more" $(resume "$RUNS/lm_more") \
    --set data.tokens="$RUNS/tokens" --set train.progress=false \
    --set train.init="$RUNS/lm/checkpoints/step_001600" --set train.steps=1000 \
    --set optim.lr=6e-4 --set data.seed=4321 --set train.seed=1
done_ lm-more

stage lm-clock
# The beat clock fine-tuned in: the prompt's tempo as a frame-aligned input (model.tempo),
# its projection starting at zero, 800 more steps (README, bundled model).
# shellcheck disable=SC2046
ag train lm --recipe recipes/lm_tiny.toml --out "$RUNS/lm_clock" $(resume "$RUNS/lm_clock") \
    --set data.tokens="$RUNS/tokens" --set train.progress=false \
    --set model.tempo.enabled=true --set 'train.init_skip=["tempo."]' \
    --set train.init="$RUNS/lm_more/checkpoints/step_001000" --set train.steps=800 \
    --set optim.lr=4e-4 --set data.seed=999 --set train.seed=2
done_ lm-clock

stage lm-clock-more
# A second cycle of 1000 steps with the clock, from the 800-step weights (README, bundled
# model: tempo 30% -> 40% of the clips, FAD-MFCC of text-only clips up by a quarter).
# shellcheck disable=SC2046
ag train lm --recipe recipes/lm_tiny.toml --out "$RUNS/lm_clock2" $(resume "$RUNS/lm_clock2") \
    --set data.tokens="$RUNS/tokens" --set train.progress=false \
    --set model.tempo.enabled=true \
    --set train.init="$RUNS/lm_clock/checkpoints/step_000800" --set train.steps=1000 \
    --set optim.lr=3e-4 --set data.seed=1234 --set train.seed=3
done_ lm-clock-more
LM="$RUNS/lm_clock2/checkpoints/$(cat "$RUNS/lm_clock2/checkpoints/latest")"

stage assemble
# The bundle's sampling defaults: the melody and the beat clock get guidance scales of
# their own, and the temperature is 0.8 (README, bundled model).
ag assemble --codec "$CODEC" --lm "$LM" --out "$OUT" --set melody_cfg_coef=6 \
    --set tempo_cfg_coef=6 --set temperature=0.8
du -sh "$OUT"
printf '== train-tiny took %d s in all\n' $(($(date +%s) - T0))
