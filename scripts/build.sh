#!/usr/bin/env bash
# Configures (once) and builds the project with Ninja into build/release.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bdir="${LONGALIGN_BUILD_DIR:-$root/build/release}"
jobs="${LONGALIGN_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
if [ ! -f "$bdir/build.ninja" ]; then
  cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
fi
cmake --build "$bdir" -j "$jobs"
