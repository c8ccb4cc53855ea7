#!/usr/bin/env bash
# Downloads (here, where Debian's registry is reachable) the .deb files of the libraries the GPU
# machine lacks, into build/debs. scripts/gpu_check.sh unpacks them there with dpkg -x.
# Pass build/debs in the device tool's `carry` list.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$root/build/debs"
cd "$root/build/debs"
pkgs=(libsentencepiece-dev libsentencepiece0 libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libcli11-dev
      libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libgtest-dev googletest libpng-dev libpng16-16 zlib1g-dev
      libpcre2-dev libpcre2-8-0 libicu-dev libicu72)
# Only what is missing, so a build/debs from before a package was added gets it too.
missing=()
for p in "${pkgs[@]}"; do compgen -G "./${p}_*.deb" >/dev/null || missing+=("$p"); done
if ((${#missing[@]})); then apt-get update -qq; apt-get download "${missing[@]}"; fi
ls -1 ./*.deb
