#!/bin/bash
# Loading benchmark: a `tlens synth` gpt_neox model (pythia-70m's shape by default;
# BENCH_LOAD_LAYERS / BENCH_LOAD_HIDDEN / BENCH_LOAD_HEADS for bigger) as 4 safetensors
# shards and as one pytorch_model.bin (python3-torch writes both), each loaded in its
# own process, stored in fp32 and in bf16 (as most hub checkpoints are), held as
# float32, auto (the checkpoint's dtype) and bfloat16: load time, and peak RSS per GB
# of fp32 weights in memory (about 1 when the loader never holds a second copy of a layer,
# less as an untied input embedding stays in its file; the layers held in bf16 take
# half). An fp32 checkpoint held in bf16 keeps its untied input embedding in memory
# (rounded), which costs more than the bf16 layers save at this size. Then `tlens info`
# on both, timed by /usr/bin/time when it is there.
set -euo pipefail
: "${BENCH_LOAD:?path of the bench_load program}" "${TLENS:?}"
PY=${PYTHON:-/usr/bin/python3}
WORK=${WORK:-$(mktemp -d)}
L=${BENCH_LOAD_LAYERS:-6} D=${BENCH_LOAD_HIDDEN:-512} H=${BENCH_LOAD_HEADS:-8} V=${BENCH_LOAD_VOCAB:-50304}
if ! "$PY" -c "import torch, numpy" 2>/dev/null; then echo "bench_load: needs $PY with torch and numpy"; exit 0; fi
mkdir -p "$WORK"
gb() { # GB of weight files in a folder
  local f n=0
  for f in "$1"/*.safetensors "$1"/*.bin; do [ -e "$f" ] && n=$((n + $(stat -c %s "$f"))); done
  awk -v n="$n" 'BEGIN { print n / 1e9 }'
}
run() { # label dir precision
  local out gbw; out=$("$BENCH_LOAD" "$2" "$3" 2>/dev/null); gbw=$(gb "$2")
  echo "$out" | awk -v l="$1" -v g="$gbw" '{ split($1, t, "="); split($2, r, "="); split($4, n, "=");
    f = n[2] * 4 / 1e9;
    printf "  %-32s files %.2f GB: load %6.3f s (%5.2f GB/s), peak RSS %6.1f MB = %.2f GB per GB of fp32 weights (%s)\n",
      l, g, t[2], g / t[2], r[2], r[2] / 1000 / f, $3 }'
}
for dt in f32 bf16; do
  W=$WORK/$dt
  mkdir -p "$W"
  echo "bench_load: gpt_neox, $L layers, d $D, $H heads, vocab $V, stored as $dt (in $W)"
  "$TLENS" synth --arch gpt_neox --layers "$L" --hidden "$D" --heads "$H" --vocab "$V" --seq 2048 --seed 1 \
    --dtype "$dt" --output "$W/synth" >/dev/null
  "$PY" "$(dirname "$0")/bench_load_make.py" "$W/synth" "$W"
  sync
  for p in float32 auto bfloat16; do
    run "4-shard safetensors, $p" "$W/st4" "$p"
    run "pytorch_model.bin, $p" "$W/bin" "$p"
  done
  if [ -x /usr/bin/time ]; then
    for d in st4 bin; do
      /usr/bin/time -f "tlens info $d: %e s, peak RSS %M KB" "$TLENS" info --model "$W/$d" >/dev/null 2>"$W/time.err" || true
      tail -n 1 "$W/time.err"
    done
  fi
done
