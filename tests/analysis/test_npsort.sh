#!/bin/bash
# The module's argpartition / argsort / top-k against numpy 1.24 itself on arrays
# full of ties and NaNs (tests/analysis/check_npsort.py).
set -euo pipefail
: "${TESTBIN:?}" "${SRC:?}"
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import numpy' 2>/dev/null; then exec "$p" "$SRC/tests/analysis/check_npsort.py" "$TESTBIN/analysis_npsort_tool"; fi
done
echo "no python3 with numpy"; exit 1
