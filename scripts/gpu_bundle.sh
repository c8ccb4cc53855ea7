#!/usr/bin/env bash
# Builds HERE everything scripts/gpu_check.sh runs on the GPU machine and packs it into one archive
# for the device tool's `carry`, so the device's few minutes go to running, not compiling:
#   scripts/gpu_bundle.sh [OUT_DIR]        (default build/gpu-bundle; under build/, so ignored)
#   OUT_DIR is replaced as a whole, so it must be absent or hold only a bundle's own files
#   (longalign-gpu.tar.xz, MANIFEST.txt): any other directory is refused, not emptied.
# then, on the device, with `carry: ["build/gpu-bundle"]`:
#   scripts/gpu_check.sh --prebuilt build/gpu-bundle
# OUT_DIR receives longalign-gpu.tar.xz and a copy of its MANIFEST.txt. The archive holds:
#   bin/      every binary (CLI, tests, benchmarks), stripped; Release, CUDA kernels for sm_80/sm_90,
#             linked against build/venv's torch wheel, which must be the GPU machine's (2.11+cu130)
#   lib/      the Debian libraries they load that the GPU machine lacks (its torch wheel brings
#             torch, CUDA and NCCL; its glibc and libstdc++ are newer than Debian 12's)
#   ctest/    the CTest files with this machine's paths replaced by @LONGALIGN_SOURCE_ROOT@,
#             @LONGALIGN_BUILD_ROOT@ and @LONGALIGN_PYTHON@, which gpu_check.sh fills in there;
#             GoogleTest lists already discovered here (the machines' CMake versions differ)
#   data/     the check's training data and tokenizers (short chats and long documents from
#             `longalign synth`, a sentencepiece model for each), made here by the bundle's own
#             longalign through `gpu_check.sh --make-data`, so the device makes none of them
#   sources.sha256  the sources the binaries came from, so gpu_check.sh can say when they are stale
# Built without libcurl (-DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON): only `selfinstruct` and the
# longbench-chat judge use it, their tests say "not run" without it (and run here, in the ordinary
# build), and its dependency tree (OpenSSL, GnuTLS, Kerberos, LDAP...) would be ~15 MB to carry.
# Built without cairo (-DLONGALIGN_WITH_CAIRO=OFF): the needle heatmap is then SVG only, and the
# check draws none; cairo's tree (pixman, fontconfig, freetype, X11 libraries) stays here.
# Sentencepiece is linked statically (build/deps, scripts/setup.sh): nothing of it is carried.
# Takes the build lock (LONGALIGN_BUILD_LOCK, default /tmp/longalign-build.lock) around CMake and
# CTest, as the builds sharing this machine's cores do; do not wrap this script in that lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$(realpath -m "${1:-$root/build/gpu-bundle}")"
bdir="$(realpath -m "${LONGALIGN_GPU_BUILD_DIR:-$root/build/gpu-prebuilt}")"
venv="${LONGALIGN_VENV:-$root/build/venv}"
lock="${LONGALIGN_BUILD_LOCK:-/tmp/longalign-build.lock}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"  # scripts/build.sh's cache
locked() { flock "$lock" "$@"; }
die() { echo "gpu_bundle: $*" >&2; exit 1; }
t0=$SECONDS

# OUT_DIR is replaced as a whole at the end: only one that is absent or holds nothing but what this
# script writes there (a previous bundle) may be, so that `gpu_bundle.sh .` cannot delete a tree.
bundle_files=(longalign-gpu.tar.xz MANIFEST.txt)
check_out() {
  [ -e "$out" ] || return 0
  [ -d "$out" ] || die "OUT_DIR $out exists and is not a directory; give an absent one (default build/gpu-bundle)"
  local f name b ours others=()
  while IFS= read -r -d '' f; do
    name=${f#"$out"/} ours=0
    if [ -f "$f" ] && [ ! -L "$f" ]; then
      for b in "${bundle_files[@]}"; do [ "$name" = "$b" ] && ours=1; done
    fi
    ((ours)) || others+=("$name")
  done < <(find "$out" -mindepth 1 -maxdepth 1 -print0)
  ((${#others[@]} == 0)) ||
    die "refusing OUT_DIR $out: it holds more than a bundle (${others[*]:0:5}$( ((${#others[@]} > 5)) && echo ' ...')); the script replaces OUT_DIR as a whole, so give one that is absent or holds only ${bundle_files[*]}"
}
check_out

[ -x "$venv/bin/python" ] || die "$venv/bin/python not found: run scripts/setup.sh first"
torch_version=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
# The binaries link the wheel's libraries by soname; the GPU machine supplies its own copies.
case "$torch_version" in
  2.11.*+cu130) ;;
  *) die "$venv has torch $torch_version, the GPU machine 2.11.0+cu130: reinstall it (LONGALIGN_TORCH='torch==2.11.*' scripts/setup.sh)" ;;
esac
torch_prefix=$("$venv/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')

if [ ! -f "$bdir/build.ninja" ]; then
  echo "== configuring $bdir (Release, without libcurl)"
  locked cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
    -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON -DLONGALIGN_WITH_CAIRO=OFF
fi
grep -q '^CMAKE_CUDA_COMPILER:FILEPATH=/' "$bdir/CMakeCache.txt" ||
  die "$bdir was configured without a CUDA compiler, so without the project's kernels: install CUDA 13 at /usr/local/cuda and remove $bdir"
echo "== building $bdir"
locked cmake --build "$bdir" -j "$(nproc)"
# Runs the PRE_TEST GoogleTest discovery here, which writes the *_tests.cmake lists carried below.
locked ctest --test-dir "$bdir" -N >/dev/null

# A fresh folder beside OUT_DIR (not inside the build dir, which is searched for CTest files) for
# the staging tree and the new OUT_DIR, removed on exit: nothing that was there before is touched.
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.gpu-bundle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stage="$tmp/stage"
mkdir -p "$stage/bin" "$stage/lib" "$stage/ctest"

echo "== binaries (stripped)"
for b in "$bdir"/bin/*; do
  { [ -f "$b" ] && [ -x "$b" ]; } || continue
  cp "$b" "$stage/bin/"
done
bins=("$stage"/bin/*)
[ -e "${bins[0]}" ] || die "no executables in $bdir/bin: the build made none?"
strip --strip-all "${bins[@]}"

echo "== Debian libraries"
# glibc, the GCC runtime and zlib: present and newer on the GPU machine (Ubuntu 24.04-like, glibc
# >= 2.39), which runs Debian 12's binaries; carried, they would shadow its own for every process
# under LD_LIBRARY_PATH, python included. Torch, CUDA and NCCL: the wheel in /opt/torch/.venv there.
system_re='^(libc|libm|libdl|libpthread|librt|libutil|libresolv|libanl|libmvec|libnsl|ld-linux-x86-64|libstdc\+\+|libgcc_s|libz)\.so'
wheel_re='^lib(torch|c10|shm|cuda|cudart|cublas|cublasLt|cudnn|cufft|cufile|curand|cusparse|cusolver|cupti|nvrtc|nvJitLink|nvshmem|nccl|nvToolsExt|nvperf|gomp|caffe2)'
# ldd's output is captured once, whole, and read from the variable: a reader that stops early
# (grep -q) would end ldd by SIGPIPE, which pipefail turns into a false "not found". A binary that
# is not dynamic makes ldd fail; it needs no libraries.
ldd_out=$(for b in "${bins[@]}"; do ldd "$b" || true; done)
missing=$(awk '/=> not found/ {print $1}' <<<"$ldd_out" | sort -u)
[ -z "$missing" ] || die "libraries not found here for the binaries: $missing (install them, then rerun)"
awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' <<<"$ldd_out" | sort -u |
  while read -r name path; do
    [[ "$path" == /lib/x86_64-linux-gnu/* || "$path" == /usr/lib/x86_64-linux-gnu/* ]] || continue
    [[ "$name" =~ $system_re || "$name" =~ $wheel_re ]] && continue
    cp -L "$path" "$stage/lib/$name"
  done
if grep -q 'libsentencepiece' <<<"$ldd_out"; then
  echo "note: sentencepiece is linked from Debian (build/deps missing?); its library is carried in lib/"
fi
libs=("$stage"/lib/*)
if [ -e "${libs[0]}" ]; then
  du -b "${libs[@]}" | sort -n | awk '{printf "  %8.1f KiB  %s\n", $1 / 1024, $2}' | sed "s#$stage/##"
else
  echo "  none needed"
fi

echo "== training data and tokenizers (gpu_check.sh --make-data)"
# Made by the binary carried, on this machine's cores (the build lock, as for the build): the same
# recipe gpu_check.sh would follow there, at the cost of the device's seconds.
locked "$root/scripts/gpu_check.sh" --make-data "$stage/data" "$bdir/bin/longalign" |
  awk '{printf "  %-14s %8.1f MiB\n", $2, $1 / 1048576}'

echo "== CTest files"
# Longest path first: the Python and the build dir lie inside the source root.
py_path=$(sed -n 's/^LONGALIGN_PYTHON:FILEPATH=//p' "$bdir/CMakeCache.txt")
re_escape() { printf '%s' "$1" | sed 's/[]\/$*.^[]/\\&/g'; }  # a literal for a sed (basic) regex
rewrite=(-e "s/$(re_escape "$py_path")/@LONGALIGN_PYTHON@/g" -e "s/$(re_escape "$bdir")/@LONGALIGN_BUILD_ROOT@/g"
         -e "s/$(re_escape "$root")/@LONGALIGN_SOURCE_ROOT@/g")
# The include scripts would rerun discovery through this machine's CMake module path; the
# discovered lists are included directly instead.
include_to_tests='s/_include\.cmake")$/_tests.cmake")/'
(cd "$bdir" && find . -name CTestTestfile.cmake -o -path './tests/*_tests.cmake') | sort | while read -r f; do
  mkdir -p "$stage/ctest/$(dirname "$f")"
  sed -e "$include_to_tests" "${rewrite[@]}" "$bdir/$f" >"$stage/ctest/$f"
done
for inc in "$bdir"/tests/*_include.cmake; do
  [ -f "${inc%_include.cmake}_tests.cmake" ] || die "no test list beside $inc: run ctest -N in $bdir and look at its output"
done
if left=$(grep -rlF "$root" "$stage/ctest"); then
  die "CTest files still name $root after the rewrite: $left (a path this script does not know; add it to 'rewrite')"
fi
echo "  $(find "$stage/ctest" -type f | wc -l) files, $(cat "$stage"/ctest/tests/*.cmake | grep -c '^add_test') tests"

echo "== manifest"
# What the binaries were built from: gpu_check.sh compares it with the checkout it runs in.
# The build files (CMakeLists.txt, *.cmake, *.in) count; the scripts, docs and data the tests read
# at run time come from the checkout there, not from the binaries.
git ls-files -co --exclude-standard -- CMakeLists.txt cmake src include tests bench configs/tiny_cpu.yaml |
  awk '/(^|\/)CMakeLists\.txt$/ || /\.(cmake|in)$/ { print; next }
       /\.(sh|py|md|txt|json|jsonl)$/ || /^tests\/fuzz\/corpus\// { next }
       { print }' | while read -r f; do [ -f "$f" ] && echo "$f"; done |
  xargs -d '\n' sha256sum >"$stage/sources.sha256"
{
  echo "longalign GPU bundle (scripts/gpu_bundle.sh); run: scripts/gpu_check.sh --prebuilt <dir holding this archive>"
  echo "built      $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
  echo "git        $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  echo "torch      $torch_version ($torch_prefix)"
  echo "nvcc       $(sed -n 's/^CMAKE_CUDA_COMPILER:FILEPATH=//p' "$bdir/CMakeCache.txt") $(sed -n 's/^set(CMAKE_CUDA_COMPILER_VERSION "\(.*\)")/\1/p' "$bdir"/CMakeFiles/*/CMakeCUDACompiler.cmake 2>/dev/null | head -1)"
  echo "build      $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$bdir/CMakeCache.txt"), $bdir, libcurl off"
  echo "sentencepiece $(cat "$root/build/deps/sentencepiece/VERSION" 2>/dev/null || echo 'Debian (build/deps absent)')"
  echo "sources    $(wc -l <"$stage/sources.sha256") files hashed in sources.sha256"
  echo "bin/"; (cd "$stage/bin" && du -b -- * | awk '{printf "  %-24s %8.1f MiB\n", $2, $1 / 1048576}')
  echo "lib/"
  if [ -e "${libs[0]}" ]; then (cd "$stage/lib" && du -b -- * | awk '{printf "  %-24s %8.1f MiB\n", $2, $1 / 1048576}')
  else echo "  (empty)"; fi
  echo "data/"; (cd "$stage/data" && du -b -- * | awk '{printf "  %-24s %8.1f MiB\n", $2, $1 / 1048576}')
} >"$stage/MANIFEST.txt"

echo "== archive"
# One .tar.xz: the binaries, ICU's 30 MB data table and the synthetic text (19 MB, 3 MB packed)
# compress about 5:1, and xz (or Python's tarfile, gpu_check.sh's fallback) unpacks it on the GPU
# machine without a package registry.
new="$tmp/new"
mkdir -p "$new"
tar -C "$stage" -cf - . | xz -9 -T0 >"$new/longalign-gpu.tar.xz"
cp "$stage/MANIFEST.txt" "$new/"
raw=$(du -sb "$stage" | cut -f1)
check_out  # again: the build took minutes, and OUT_DIR may have been filled meanwhile
rm -rf "$out" && mv "$new" "$out"
packed=$(stat -c %s "$out/longalign-gpu.tar.xz")

# What the device tool carries besides the bundle: the tracked files (those deleted in the work tree
# are skipped) and the untracked ones git does not ignore. Summed whole, not per xargs batch.
bytes_of() { { xargs -0 -r stat -c %s -- 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }
tracked=$(git ls-files -z | bytes_of)
untracked=$(git ls-files -zo --exclude-standard | bytes_of)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
total=$((packed + tracked + untracked))
echo "bundle     $out/longalign-gpu.tar.xz: $(mib "$packed") ($(mib "$raw") unpacked)"
echo "carried    $(mib "$total") of the device tool's 64 MiB (bundle + tracked $(mib "$tracked") + untracked $(mib "$untracked"))"
((total < 56 * 1048576)) || echo "WARNING: $(mib "$total") leaves little of the 64 MiB; drop something before carrying" >&2
echo "done in $((SECONDS - t0)) s; on the device: scripts/gpu_check.sh --prebuilt ${out#"$root"/} (carry: [\"${out#"$root"/}\"])"
