# The pages test_plot draws (48 layers, a title needing escapes) pass check_svg.py;
# the 48-layer heatmap's cells are the matrix written beside it (check_heatmap.py).
set -euo pipefail
: "${TESTBIN:?}" "${SRC:?}" "${WORK:?}"
rm -rf "$WORK" && mkdir -p "$WORK"
WORK="$WORK" "$TESTBIN/test_plot" 2>"$WORK/test_plot.log" || { cat "$WORK/test_plot.log"; exit 1; }
python3 "$SRC/tests/plot/check_svg.py" --has "logit lens" --has "tuned lens" --has "model output" \
  "$WORK/layers48.svg"
python3 "$SRC/tests/plot/check_svg.py" --has "mean over layers" --has "learning rate" --has "gradient norm" \
  "$WORK/train48.svg" "$WORK/train5000.svg"
python3 "$SRC/tests/plot/check_svg.py" --has "KL(own lens || lens of layer i) (bits/byte)" --has "trained: lens of layer i" \
  --has "hidden state of layer j" "$WORK/heatmap48.svg"
python3 "$SRC/tests/plot/check_heatmap.py" "$WORK/heatmap48.json" "$WORK/heatmap48.svg"
