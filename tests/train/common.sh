# Shared by the training tests: a small, fast setting on the real stories260k model
# and TinyStories text.
set -euo pipefail
: "${TLENS:?}" "${FIXTURES:?}" "${WORK:?}" "${TESTBIN:?}"
MPIEXEC=${MPIEXEC:-mpirun}
MODEL=$FIXTURES/models/stories260k
DATA=$FIXTURES/data/tinystories_train_head.jsonl
CMP=$TESTBIN/cmp_lens
# Open MPI's plugins leak at exit in frames LeakSanitizer cannot name or suppress;
# address and undefined-behaviour checks stay on in sanitizer builds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
rm -rf "$WORK"
mkdir -p "$WORK"
# Small runs: 8 samples of 64 tokens per step, 2 per rank per micro-batch.
BASE=(--model.name "$MODEL" --data.name "$DATA" --max_seq_len 64 --tokens_per_step 512
      --per_gpu_batch_size 2 --cache_dir "$WORK/cache" --progress=false)
fail() { echo "FAIL: $*" >&2; exit 1; }
ranks() { # ranks N args...: run tlens with N MPI ranks (N > 2 oversubscribes)
  local n=$1; shift
  "$MPIEXEC" -np "$n" --oversubscribe -x OMP_NUM_THREADS=1 "$TLENS" "$@"
}
