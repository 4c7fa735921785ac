#!/usr/bin/env bash
# Sets up (packages + build) and runs the whole test suite.
#   bash jobs/test.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$here/build}
shift || true
TLENS_TEST_PACKAGES=1 bash "$here/jobs/setup.sh" "$build" "$@"
# The suite needs PyTorch to check params.pt; setup installs it, so its absence is a failure.
export TLENS_REQUIRE_TORCH=${TLENS_REQUIRE_TORCH:-1}
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 ${TLENS_CTEST_ARGS:-}
