#!/usr/bin/env bash
# The main job on the built-in default: installs and builds what is missing, then
# trains a tuned lens for the real pretrained stories260k Llama on TinyStories with
# 2 MPI ranks (checkpoints on, resumable), evaluates it against the logit lens on
# held-out stories, and leaves the hub-layout lens and the chart in OUT.
#   bash jobs/demo.sh [OUT]        (default: ./demo-out)
# The training settings are configs/stories260k-demo.json (tests/train check that it
# runs on this corpus). Env: TLENS_FIXTURES (default ../shared/fixtures), DEMO_STEPS
# (default: the config's).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(realpath -m "${1:-$here/demo-out}")
fixtures=$(realpath -m "${TLENS_FIXTURES:-$here/../shared/fixtures}")
model=$fixtures/models/stories260k
[ -f "$model/config.json" ] || { echo "demo: no model at $model (set TLENS_FIXTURES)" >&2; exit 1; }

bash "$here/jobs/setup.sh" "$here/build" >&2
tlens=$here/build/tlens
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

echo "== training: 2 ranks, stories260k, TinyStories (checkpoints in $out/lens/checkpoints)" >&2
mpirun -np 2 --oversubscribe "$tlens" train --config "$here/configs/stories260k-demo.json" \
  --model.name "$model" --data.name "$fixtures/data/tinystories_train_head.jsonl.zst" \
  ${DEMO_STEPS:+--num_steps "$DEMO_STEPS"} --output "$out/lens" --hub_layout "$out/hub"

echo "== evaluating on held-out stories" >&2
"$tlens" eval --model.name "$model" --data.name "$fixtures/data/tinystories_valid_head.jsonl.zst" \
  --max_seq_len 256 -l "$out/lens" --output "$out/eval"

echo "== done: lens in $out/lens (config.json + params.pt), hub layout in $out/hub/lens/stories260k," >&2
echo "   metrics in $out/eval/aggregate_metrics.json, chart in $out/eval/metrics.svg" >&2
