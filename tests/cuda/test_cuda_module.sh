# The CUDA backend is a module opened at run time (include/tlens/cuda_module.h): the
# tlens executable links no CUDA library, `tlens info --devices` reports what the
# loader found, and each way of failing to load it is one clear line, not a crash.
set -euo pipefail
: "${TLENS:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
if ldd "$TLENS" | grep -E 'libcudart|libcublas|libnccl'; then fail "tlens links CUDA libraries directly"; fi

out=$("$TLENS" info --devices) || fail "info --devices: exit $?"
echo "$out"
grep -q '^cpu: .*threads' <<<"$out" || fail "no cpu line"
if [ -e "$(dirname "$TLENS")/libtlens_cuda.so" ]; then
  # the module loads; without a GPU it says so
  grep -qE '^cuda: +(available|unavailable: cuda: no CUDA device)' <<<"$out" || fail "module beside tlens not loaded"
else
  grep -q 'libtlens_cuda.so is not beside the executable' <<<"$out" || fail "missing module not explained"
fi
out=$(TLENS_CUDA_MODULE=/nonexistent/libtlens_cuda.so "$TLENS" info --devices)
grep -q 'unavailable: .*/nonexistent/libtlens_cuda.so: cannot open' <<<"$out" || fail "missing path: $out"
out=$(TLENS_CUDA_MODULE=none "$TLENS" info --devices)
grep -q 'unavailable: .*TLENS_CUDA_MODULE=none' <<<"$out" || fail "TLENS_CUDA_MODULE=none: $out"
# a shared library that is not a tlens module
lib=$(ldconfig -p | grep -oE '/[^ ]*libzstd\.so\.1$' | head -1)
if [ -n "$lib" ]; then
  out=$(TLENS_CUDA_MODULE=$lib "$TLENS" info --devices)
  grep -q "no tl_cuda_module_get in it" <<<"$out" || fail "foreign library: $out"
fi
rc=0; "$TLENS" info --devices --model x 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "--devices with --model: exit $rc, expected 2"
echo ok
