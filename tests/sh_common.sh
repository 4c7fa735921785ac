# Shared set-up of the shell tests outside tests/train (which have their own
# common.sh): strict mode, the variables ctest gives, a fresh $WORK, fail().
set -euo pipefail
: "${TLENS:?}" "${WORK:?}" "${FIXTURES:?}"
rm -rf "$WORK"; mkdir -p "$WORK"
# Open MPI's plugins leak at exit in frames LeakSanitizer cannot name or suppress;
# address and undefined-behaviour checks stay on in sanitizer builds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail() { echo "FAIL: $*" >&2; exit 1; }
MODEL=$FIXTURES/models/stories260k
