# Full disks and write limits: checkpoint, export, eval and token-cache writes fail with
# one line naming the file and the errno text, exit 1; the previous checkpoint stays
# valid; no half-written file is visible under its final name; after space is freed
# the run resumes and finishes. Needs a small tmpfs (root); skipped (77) without one.
source "$(dirname "$0")/common.sh"
FS="$WORK/fs"
mkdir -p "$FS"
mount -t tmpfs -o size=640k tmpfs "$FS" 2>/dev/null || { echo "skipped: cannot mount a small tmpfs here"; exit 77; }
trap 'umount "$FS" 2>/dev/null || true' EXIT
out="$FS/run"
args=("${BASE[@]}" --num_steps 4 --checkpoint_freq 2 --checkpoint_keep 1 --threads 1 --output "$out")
rc=0; "$TLENS" train "${args[@]}" --stop_after 2 2>"$WORK/log" || rc=$?
[ "$rc" -eq 3 ] || { cat "$WORK/log"; fail "stop_after 2: exit $rc"; }
ck="$out/checkpoints/step_00000002.h5"
[ -s "$ck" ] || fail "no step-2 checkpoint"
sum=$(md5sum < "$ck")
fill() { # leaves about $1 KB free on the tmpfs
  rm -f "$FS/filler"
  local free; free=$(df --output=avail -k "$FS" | tail -1)
  [ "$free" -gt "$1" ] && dd if=/dev/zero of="$FS/filler" bs=1k count=$((free - $1)) 2>/dev/null || true
}
expect_nospace() { # what pattern: exit 1, one error line with the pattern and an errno text
  local what=$1 pat=$2 rc=$3
  [ "$rc" -eq 1 ] || { cat "$WORK/err"; fail "$what: exit $rc, expected 1"; }
  grep -q -- "$pat" "$WORK/err" || { cat "$WORK/err"; fail "$what: expected '$pat'"; }
  grep -qi -e "No space left on device" -e "File too large" "$WORK/err" || { cat "$WORK/err"; fail "$what: no errno text"; }
  [ "$(grep -c 'error:' "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; fail "$what: one error line expected"; }
}
# 1. a checkpoint that does not fit: the old one stays, nothing half-written
fill 40
rc=0; "$TLENS" train "${args[@]}" 2>"$WORK/err" || rc=$?
expect_nospace "checkpoint" "step_00000004" $rc
[ "$(md5sum < "$ck")" = "$sum" ] || fail "the previous checkpoint changed"
! ls "$out/checkpoints" | grep -q -e tmp -e step_00000004 || fail "a partial checkpoint is visible: $(ls "$out/checkpoints")"
[ ! -e "$out/params.pt" ] && [ ! -e "$out/config.json" ] || fail "a lens was written"
# 2. space freed: the run resumes from step 2 and finishes
rm -f "$FS/filler"
"$TLENS" train "${args[@]}" 2>"$WORK/log" || { cat "$WORK/log"; fail "resume after freeing space"; }
[ -s "$out/params.pt" ] || fail "no lens after the resume"
# 3. export onto a full disk: no params.pt or config.json under the final names
fill 20
rc=0; "$TLENS" export --checkpoint "$out/checkpoints" --output "$FS/exp" >/dev/null 2>"$WORK/err" || rc=$?
expect_nospace "export" "$FS/exp" $rc
[ ! -e "$FS/exp/params.pt" ] && [ ! -e "$FS/exp/config.json" ] || fail "export left a file: $(ls -a "$FS/exp")"
! ls -a "$FS/exp" | grep -q tmp || fail "export left a temporary file: $(ls -a "$FS/exp")"
# 4. eval onto a full disk: aggregate_metrics.json never half-written
fill 2
rc=0; "$TLENS" eval --model.name "$MODEL" --data.name "$DATA" --max_seq_len 64 --tokens 1024 --cache_dir "$WORK/cache" \
  --output "$FS/ev" --progress=false >/dev/null 2>"$WORK/err" || rc=$?
expect_nospace "eval" "$FS/ev" $rc
[ ! -e "$FS/ev/aggregate_metrics.json" ] || fail "eval left aggregate_metrics.json"
! ls -a "$FS/ev" 2>/dev/null | grep -q tmp || fail "eval left a temporary file"
# 5. the token cache on a full disk
rc=0; "$TLENS" eval --model.name "$MODEL" --data.name "$DATA" --max_seq_len 64 --tokens 1024 --cache_dir "$FS/cache" \
  --output "$WORK/ev2" --progress=false >/dev/null 2>"$WORK/err" || rc=$?
expect_nospace "token cache" "$FS/cache" $rc
! ls -a "$FS/cache" 2>/dev/null | grep -q tltok || fail "a token cache file is visible: $(ls -a "$FS/cache")"
# 6. a file size limit (ulimit -f) on export: EFBIG, not a kill by SIGXFSZ
rm -f "$FS/filler"
rc=0; (ulimit -f 40; "$TLENS" export --checkpoint "$out/checkpoints" --output "$WORK/exp2") >/dev/null 2>"$WORK/err" || rc=$?
expect_nospace "export under ulimit -f" "params.pt" $rc
[ ! -e "$WORK/exp2/params.pt" ] && ! ls -a "$WORK/exp2" | grep -q tmp || fail "ulimit export left a file: $(ls -a "$WORK/exp2")"
echo "ok: full disks and write limits"
