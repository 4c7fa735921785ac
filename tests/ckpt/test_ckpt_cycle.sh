# A damaged checkpoint whose group links to itself (found by fuzz_ckpt: HDF5's walk
# over such a file nests without end) is refused at once with one line, and the
# export writes nothing.
source "$SRC/tests/sh_common.sh"
bad=$SRC/tests/fuzz/regress/ckpt/group-links-to-itself.h5
# the file really is cyclic: h5ls lists objects hundreds of levels deep before giving up
deep=$(timeout 2 h5ls -r "$bad" 2>/dev/null | awk '{n = gsub("/", "/", $1); if (n > m) m = n} END {print m + 0}' || true)
[ "${deep:-0}" -gt 100 ] || fail "expected a cyclic file, h5ls reached depth ${deep:-0}"
rc=0
timeout 20 "$TLENS" export --checkpoint "$bad" --output "$WORK/out" 2> "$WORK/err" || rc=$?
[ "$rc" = 1 ] || fail "exit $rc, expected 1: $(cat "$WORK/err")"
[ "$(wc -l < "$WORK/err")" = 1 ] || fail "expected one line: $(cat "$WORK/err")"
grep -q "group-links-to-itself.h5: an object is nested 9 levels deep" "$WORK/err" || fail "message: $(cat "$WORK/err")"
[ ! -e "$WORK/out" ] || fail "export wrote $WORK/out"
echo "ok: cyclic checkpoint refused: $(cat "$WORK/err")"
