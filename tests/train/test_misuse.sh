# Misuse: one run per output folder (a second train or eval into a folder in use is
# one error line naming the holder's host and PID, exit 1; kill -9 leaves no stale
# lock); a torchrun- or Slurm-style environment that meant several processes but got
# one MPI rank is exit 2 with how to launch; a missing required flag is exit 2.
source "$(dirname "$0")/common.sh"
out="$WORK/o"
args=("${BASE[@]}" --num_steps 2000 --checkpoint_freq 0 --threads 1 --output "$out")
expect_status() { # expect_status STATUS PATTERN command...
  local want=$1 pat=$2; shift 2
  local rc=0
  timeout 120 "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$WORK/err"; fail "exit $rc, expected $want: $*"; }
  grep -q -- "$pat" "$WORK/err" || { cat "$WORK/err"; fail "expected '$pat': $*"; }
  [ "$(grep -c 'error:' "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; fail "expected one error line: $*"; }
}
"$TLENS" train "${args[@]}" 2>"$WORK/first.log" &
pid=$!
for _ in $(seq 600); do
  grep -q "pid $pid" "$out/.tlens.lock" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$WORK/first.log"; fail "the first run ended early"; }
  sleep 0.1
done
grep -q "pid $pid" "$out/.tlens.lock" || fail "the lock file does not name the first run"
expect_status 1 "in use by another tlens run (host $(hostname).*pid $pid)" "$TLENS" train "${args[@]}"
expect_status 1 "in use by another tlens run" "$TLENS" eval --model.name "$MODEL" --data.name "$DATA" --max_seq_len 64 \
  --tokens 64 --cache_dir "$WORK/cache" --output "$out"
kill -9 $pid
wait $pid 2>/dev/null || true
# the kernel dropped the lock with the process: the folder is free again
"$TLENS" train "${BASE[@]}" --num_steps 1 --threads 1 --output "$out" 2>"$WORK/again.log" \
  || { cat "$WORK/again.log"; fail "a run after kill -9 of the holder"; }
[ -s "$out/params.pt" ] || fail "no lens after the second run"
# launchers
expect_status 2 "mpirun -np N" env WORLD_SIZE=2 RANK=0 "$TLENS" train "${BASE[@]}" --output "$WORK/t"
expect_status 2 "mpirun -np N" env LOCAL_RANK=1 "$TLENS" eval --model.name "$MODEL" --data.name "$DATA" --output "$WORK/t"
expect_status 2 "srun --mpi=pmix" env SLURM_NTASKS=4 "$TLENS" train "${BASE[@]}" --output "$WORK/t"
expect_status 2 "WORLD_SIZE='two'" env WORLD_SIZE=two "$TLENS" train "${BASE[@]}" --output "$WORK/t"
[ ! -e "$WORK/t" ] || fail "a refused launch made its output folder"
# a single rank with WORLD_SIZE=1 is a normal run
WORLD_SIZE=1 RANK=0 "$TLENS" train "${BASE[@]}" --num_steps 1 --threads 1 --output "$WORK/w1" 2>"$WORK/w1.log" \
  || { cat "$WORK/w1.log"; fail "WORLD_SIZE=1 is one process"; }
# a resume on a changed corpus (same path, other bytes) is an error naming the field and
# both values unless --force, which metrics.jsonl records
head -n 1500 "$DATA" > "$WORK/corpus.jsonl"
rargs=(--model.name "$MODEL" --data.name "$WORK/corpus.jsonl" --max_seq_len 64 --tokens_per_step 512
       --per_gpu_batch_size 2 --cache_dir "$WORK/cache2" --progress=false --num_steps 4 --threads 1 --output "$WORK/r")
rc=0; "$TLENS" train "${rargs[@]}" --stop_after 2 2>/dev/null || rc=$?
[ $rc -eq 3 ] || fail "stop_after on the corpus copy: exit $rc"
tail -n 100 "$DATA" >> "$WORK/corpus.jsonl"
expect_status 1 "config data.source_sha256 is \"[0-9a-f]\{64\}\" in the checkpoint but \"[0-9a-f]\{64\}\" in this run" \
  "$TLENS" train "${rargs[@]}"
"$TLENS" train "${rargs[@]}" --force 2>"$WORK/force.log" || { cat "$WORK/force.log"; fail "--force resume"; }
grep -q '"event": "resume_forced"' "$WORK/r/metrics.jsonl" || fail "metrics.jsonl does not record the forced resume"
# a hub id resolves from the Hugging Face cache (a tree built by hand as the hub client
# makes it), for train and info; the lens records the id as given
hub="$WORK/hub"; snap="$hub/models--local--stories260k/snapshots/0123456789abcdef0123456789abcdef01234567"
mkdir -p "$snap" "$hub/models--local--stories260k/refs"
for f in config.json model.safetensors tokenizer.json; do ln -s "$MODEL/$f" "$snap/$f"; done
echo -n 0123456789abcdef0123456789abcdef01234567 > "$hub/models--local--stories260k/refs/main"
HF_HUB_CACHE="$hub" "$TLENS" info --model local/stories260k >/dev/null 2>"$WORK/hub.log" || { cat "$WORK/hub.log"; fail "info by hub id"; }
HF_HUB_CACHE="$hub" "$TLENS" train "${BASE[@]}" --model.name local/stories260k --num_steps 1 --threads 1 --output "$WORK/hubrun" \
  2>"$WORK/hub.log" || { cat "$WORK/hub.log"; fail "train by hub id"; }
grep -q '"base_model_name_or_path": *"local/stories260k"' "$WORK/hubrun/config.json" || { cat "$WORK/hubrun/config.json"; fail "the lens does not record the hub id"; }
expect_status 1 "huggingface-cli download local/missing" env HF_HUB_CACHE="$hub" "$TLENS" train "${BASE[@]}" \
  --model.name local/missing --num_steps 1 --output "$WORK/hubmiss"
# usage errors exit 2
expect_status 2 "output" "$TLENS" train --model.name "$MODEL" --data.name "$DATA"
expect_status 2 "model.name" "$TLENS" eval --data.name "$DATA" --output "$WORK/t"
expect_status 2 "unknown option" "$TLENS" train --bogus 1
echo "ok: one run per folder, launchers, usage statuses"
