# Every chart the other plot tests leave (eval, training and comparison pages of
# 48-layer and smaller runs) rendered in headless Chromium: decoded as an image, a
# screenshot at 800 px wide that is not blank, and the texts as the browser lays
# them out apart and on the page (check_render.py). Skipped (77) without Chromium
# (Debian: chromium). $1: the folder of the tests' WORK folders.
set -euo pipefail
: "${SRC:?}" "${WORK:?}"
TESTS=$1
BROWSER=
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null; then BROWSER=$(command -v "$b"); break; fi
done
[ -n "$BROWSER" ] || { echo "SKIP: no Chromium (Debian chromium)"; exit 77; }
rm -rf "$WORK" && mkdir -p "$WORK"
shopt -s nullglob
PAGES=("$TESTS"/plot_unit_pages/*.svg "$TESTS"/plot_pictures/pages/*.svg "$TESTS"/plot_compare/pages/*.svg)
[ ${#PAGES[@]} -ge 7 ] || { echo "FAIL: ${#PAGES[@]} pages found under $TESTS (plot_unit_pages, plot_pictures, plot_compare first)"; exit 1; }
python3 "$SRC/tests/plot/check_render.py" "$BROWSER" "$WORK" "${PAGES[@]}"
