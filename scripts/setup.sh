#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh Debian 12 machine: system packages, a Python venv
# holding the LibTorch pip wheel (and HF transformers for parity tests), then a build.
# Re-running it is cheap: every step checks what is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="${LONGALIGN_VENV:-$root/build/venv}"
torch_spec="${LONGALIGN_TORCH:-torch==2.11.*}"

apt_pkgs=(build-essential cmake ninja-build ccache pkg-config python3-venv
          libsentencepiece-dev sentencepiece libyaml-cpp-dev nlohmann-json3-dev
          libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libpng-dev libcurl4-openssl-dev
          libpcre2-dev libicu-dev clang libclang-rt-14-dev)

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing apt packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating venv at $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, transformers, safetensors, tensorboard' 2>/dev/null; then
  echo "[setup] installing $torch_spec and transformers into $venv (cached by pip)"
  "$venv/bin/pip" install -q "$torch_spec" "transformers>=4.45" safetensors numpy tensorboard
fi

"$root/scripts/build.sh"
