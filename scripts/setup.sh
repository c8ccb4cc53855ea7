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
          libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libcairo2-dev fonts-dejavu-core libcurl4-openssl-dev
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
# sentencepiece: one version for the C++ library built below and the Python package, the oracle of
# tests/data/tokenize/spm_parity_test.sh and the peer of bench/tokenizer_bench.sh. Versions differ in how
# Unigram breaks ties between equal-score segmentations (0.2.1 and 0.2.3 split 23 nines as 12+11
# and 11+12), so a newer wheel beside an older library fails the parity test for no fault of ours.
# Held at 0.2.1: 0.2.3's sources fetch abseil from GitHub at configure time, out of reach here.
spm_version=0.2.1
spm_sha256=8138cec27c2f2282f4a34d9a016e3374cd40e5c6e9cb335063db66a0a3b71fad
if ! "$venv/bin/python" -c 'import torch, transformers, safetensors, tensorboard, sentencepiece, peft' 2>/dev/null; then
  echo "[setup] installing $torch_spec, transformers and peft into $venv (cached by pip)"
  "$venv/bin/pip" install -q "$torch_spec" "transformers>=4.45" "peft>=0.13" safetensors numpy tensorboard "sentencepiece==$spm_version"
fi
if [ "$("$venv/bin/python" -c 'import sentencepiece; print(sentencepiece.__version__)')" != "$spm_version" ]; then
  echo "[setup] installing Python sentencepiece $spm_version into $venv (the library's version)"
  "$venv/bin/pip" install -q "sentencepiece==$spm_version"
fi

# sentencepiece >= 0.2 from its PyPI source distribution (the C++ sources sit under sentencepiece/
# in it): its public Normalize() is what lets `pack` encode sentencepiece BPE word by word through
# a cache (src/data/tokenize/tokenizer.cpp), about twice as fast as sentencepiece itself; Debian's 0.1.97
# lacks it (bench/RESULTS.md). Built once into build/deps/sentencepiece as static, PIC, -O3
# libraries that CMake prefers (cmake/Dependencies.cmake); when the download or build fails, the
# build falls back to Debian's, and sentencepiece's own (slower) encoding.
spm_prefix="$root/build/deps/sentencepiece"
build_sentencepiece() {
  local work="$root/build/deps/sentencepiece-$spm_version.work" tarball
  # set -e does not apply inside a function called as a condition: every step says || return 1.
  rm -rf "$work" && mkdir -p "$work" || return 1
  "$venv/bin/pip" download -q --no-deps --no-binary :all: --timeout 30 --retries 2 -d "$work" \
    "sentencepiece==$spm_version" || return 1
  tarball="$work/sentencepiece-$spm_version.tar.gz"
  echo "$spm_sha256  $tarball" | sha256sum -c --quiet - || { echo "[setup] $tarball: unexpected sha256" >&2; return 1; }
  tar -xzf "$tarball" -C "$work" || return 1
  local src="$work/sentencepiece-$spm_version/sentencepiece"
  # Static only (nothing to ship beside the binary), no tcmalloc (a run-time dependency for
  # the GPU machine), PIC so it can go into any library.
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DSPM_ENABLE_SHARED=OFF -DSPM_ENABLE_TCMALLOC=OFF >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; return 1; }
  cmake --build "$work/build" -j "$(nproc)" --target sentencepiece-static sentencepiece_train-static \
    >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; return 1; }
  # Only the libraries and the two public headers; staged, then renamed into place, so a killed
  # set-up never leaves a half-installed prefix that CMake would pick up.
  local stage="$spm_prefix.tmp"
  rm -rf "$stage" && mkdir -p "$stage/lib" "$stage/include" || return 1
  cp "$work/build/src/libsentencepiece.a" "$work/build/src/libsentencepiece_train.a" "$stage/lib/" || return 1
  cp "$src/src/sentencepiece_processor.h" "$src/src/sentencepiece_trainer.h" "$stage/include/" || return 1
  echo "$spm_version" >"$stage/VERSION" || return 1
  rm -rf "$spm_prefix" && mv "$stage" "$spm_prefix" || return 1
  rm -rf "$work"
}
if [ "$(cat "$spm_prefix/VERSION" 2>/dev/null)" != "$spm_version" ]; then
  echo "[setup] building sentencepiece $spm_version (static) into $spm_prefix"
  if build_sentencepiece; then
    # An existing build directory was configured without it: configure again to pick it up.
    bdir="${LONGALIGN_BUILD_DIR:-$root/build/release}"
    if [ -f "$bdir/CMakeCache.txt" ]; then cmake "$bdir" >/dev/null; fi
  else
    echo "[setup] WARNING: could not build sentencepiece $spm_version; using Debian's libsentencepiece (slower)" >&2
  fi
fi

"$root/scripts/build.sh"
