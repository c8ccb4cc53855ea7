#!/usr/bin/env bash
# The main job on the built-in default: set-up (idempotent), build, then `longalign demo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
exec "${LONGALIGN_BUILD_DIR:-$root/build/release}/bin/longalign" demo --output "$root/runs/demo" "$@"
