# A 2048-token trajectory with every statistic (entropy, forward_kl, cross_entropy,
# max_probability, rank, log_prob_diff, and kl/js/tv against a second input) through
# the logit lens of a synthetic pythia-70m-shaped GPT-NeoX (6 layers, d 512, 8 heads,
# V 50304), written to an output folder: wall time and peak RSS of `tlens trajectory`,
# beside the reference's approach in the same run (bench_trajectory.py: PyTorch
# building the full [layers+1, tokens, vocab] log-probability tensors of both inputs
# from the hidden states tlens dumps, then the same statistics and top-k labels).
set -euo pipefail
: "${TLENS:?}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tlens_bench_traj.XXXXXX")
trap 'rm -rf "$work"' EXIT
T=${BENCH_TOKENS:-2048}
"$TLENS" synth --arch gpt_neox --layers 6 --hidden 512 --heads 8 --vocab 50304 --seq 2048 --seed 1 \
  --output "$work/model" >/dev/null
PY=python3
command -v "$PY" >/dev/null || PY=/usr/bin/python3
[ -n "${PYTHON:-}" ] && PY=$PYTHON
exec "$PY" "$here/bench_trajectory.py" "$TLENS" "$work" "$T"
