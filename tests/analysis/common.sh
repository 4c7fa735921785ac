# Shared by the analysis shell tests (each keeps its own `set` line): the variables
# ctest gives, a fresh $WORK, a failure count, and
#   find_python MODULE   sets $PY to a python3 that imports MODULE (or "" if none)
#   expect_error NAME PATTERN ARGS...   `tlens trajectory ARGS` must fail with one
#       error line matching PATTERN and write no output folder; counts failures
: "${TLENS:?}" "${FIXTURES:?}" "${WORK:?}" "${SRC:?}"
rm -rf "$WORK"; mkdir -p "$WORK"
fails=0

find_python() {
  PY=""
  for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if "$p" -c "import $1" 2>/dev/null; then PY=$p; break; fi
  done
}

expect_error() {
  local name=$1 pat=$2; shift 2
  local out=$WORK/out_$name
  "$TLENS" trajectory "$@" --output "$out" >"$WORK/$name.out" 2>"$WORK/$name.err"
  local rc=$?
  local lines; lines=$(wc -l < "$WORK/$name.err")
  if [ $rc -eq 0 ] || [ "$lines" -ne 1 ] || ! grep -q "^tlens trajectory: error: .*$pat" "$WORK/$name.err" || [ -e "$out" ]; then
    echo "FAIL $name (exit $rc, $lines stderr lines):"; cat "$WORK/$name.err"; fails=$((fails + 1))
  else
    echo "ok   $name: $(cat "$WORK/$name.err")"
  fi
}
