#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), build, then every test through CTest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "${LONGALIGN_BUILD_DIR:-$root/build/release}"
ctest --output-on-failure -j "$(nproc)" "$@"
