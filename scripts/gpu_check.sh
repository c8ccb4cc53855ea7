#!/usr/bin/env bash
# The one command for the GPU machine: build, run every test (GPU tests included, nothing
# skipped for lack of a GPU) and the GPU benchmarks. The machine has torch in /opt/torch/.venv,
# nvcc, cmake and ninja but no package registry, so the Debian libraries come as .debs fetched
# beforehand by scripts/fetch_debs.sh (carried as build/debs) and unpacked here with dpkg -x.
# Carry build/deps too (scripts/setup.sh's static sentencepiece 0.2, ~4 MB): CMake prefers it, and
# falls back to the unpacked Debian sentencepiece when it is absent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${LONGALIGN_GPU_PYTHON:-/opt/torch/.venv/bin/python}"
sysroot="$root/build/sysroot"
if [ -d build/debs ]; then
  mkdir -p "$sysroot"
  for d in build/debs/*.deb; do dpkg -x "$d" "$sysroot"; done
fi
export LD_LIBRARY_PATH="$sysroot/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
torch_prefix=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
echo "== $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader) | torch $("$py" -c 'import torch;print(torch.__version__)')"
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$sysroot/usr;$torch_prefix" -DGTEST_ROOT="$sysroot/usr" -DLONGALIGN_PYTHON="$py"
cmake --build build/gpu -j "$(nproc)"
echo "== tests"
# Oracles that need Python packages the GPU machine may lack (transformers, tensorboard) are
# excluded by name when missing, and said so; everything else runs, the GPU tests included.
exclude=()
"$py" -c 'import transformers, safetensors' 2>/dev/null || exclude+=("HfParity" "train_cli" "eval_cli" "dist_cli")
"$py" -c 'import tensorboard' 2>/dev/null || exclude+=("TfEvents.TensorBoard")
if [ ${#exclude[@]} -gt 0 ]; then
  echo "not run here (missing Python packages in $py): ${exclude[*]}"
  ctest --test-dir build/gpu --output-on-failure -j 4 -E "$(IFS='|'; echo "${exclude[*]}")" || status=$?
else
  ctest --test-dir build/gpu --output-on-failure -j 4 || status=$?
fi
echo "== attention kernel benchmark (longalign kernel beside torch FlashAttention-2 varlen)"
(cd build/gpu && ./bin/attention_bench) || status=1
echo "== GPU training throughput (tiny_cpu shape on cuda, bf16)"
bin=build/gpu/bin/longalign
work=$(mktemp -d)
"$bin" synth -o "$work/s.jsonl" -n 400 --min-words 60 --max-words 400 >/dev/null 2>&1
"$bin" tokenizer train -i "$work/s.jsonl" --vocab-size 2000 -o "$work/t.model" >/dev/null 2>&1
"$bin" train --config configs/tiny_cpu.yaml --set "data.inputs=[$work/s.jsonl]" --set "data.tokenizer=$work/t.model" \
  --set train.device=cuda --set train.dtype=bf16 --set train.epochs=1 --set "output.dir=$work/run" --no-progress \
  >"$work/train.log" 2>&1 || status=1
tail -5 "$work/train.log"
grep "self-check" "$work/train.log" || echo "no attention kernel self-check line (head_dim of tiny_cpu not 64/128?)"
echo "== generation throughput (prefill and decode, cuda bf16)"
ck=$(ls -d "$work"/run/checkpoints/step-* | tail -1)
"$py" -c "print('The river carries the evening light. ' * 300)" >"$work/prompt.txt"
"$bin" generate -m "$ck" --prompt-file "$work/prompt.txt" --max-new-tokens 128 --device cuda --timing >/dev/null

echo "== NCCL at world size 1 (one GPU cannot host two NCCL ranks)"
scripts/launch.sh --nproc-per-node 1 --standalone -- "$bin" train --config configs/tiny_cpu.yaml \
  --set "data.inputs=[$work/s.jsonl]" --set "data.tokenizer=$work/t.model" --set train.device=cuda --set train.dtype=bf16 \
  --set train.max_steps=10 --set distributed.backend=nccl --set distributed.zero=2 --set "output.dir=$work/nccl" \
  --no-progress 2>&1 | tail -4

echo "== ~1.1B model, 64k-token budget, activation checkpointing: tokens/s and peak memory per strategy"
"$bin" synth -o "$work/long.jsonl" -n 300 --long-fraction 0.6 --min-words 2000 --max-words 40000 >/dev/null 2>&1
"$bin" tokenizer train -i "$work/long.jsonl" --vocab-size 8000 -o "$work/long.model" >/dev/null 2>&1
"$bin" train --config configs/bench_1b_64k.yaml --set "data.inputs=[$work/long.jsonl]" \
  --set "data.tokenizer=$work/long.model" --dry-run | sed -n '/estimated memory/,$p'
for strategy in naive sort pack; do
  units=8; [ "$strategy" = pack ] && units=1
  echo "-- $strategy"
  "$bin" train --config configs/bench_1b_64k.yaml --set "data.inputs=[$work/long.jsonl]" \
    --set "data.tokenizer=$work/long.model" --set "data.strategy=$strategy" --set "data.units_per_step=$units" \
    --set "output.dir=$work/b1-$strategy" --no-progress 2>&1 | grep -E "steps|peak" || status=1
done
echo "== ~1.1B model at 64k, world size 1: ZeRO-3 (layers gathered, recomputed) and optimizer offload, beside the planner"
scripts/launch.sh --nproc-per-node 1 --standalone -- "$bin" train --config configs/tiny_cpu.yaml \
  --set "data.inputs=[$work/s.jsonl]" --set "data.tokenizer=$work/t.model" --set train.device=cuda --set train.dtype=bf16 \
  --set train.max_steps=4 --set distributed.backend=nccl --set distributed.zero=3 --set "output.dir=$work/nccl3" \
  --no-progress 2>&1 | tail -2 || status=1
for mode in distributed.zero=3 distributed.offload_optimizer=true; do
  echo "-- $mode"
  "$bin" train --config configs/bench_1b_64k.yaml --set "data.inputs=[$work/long.jsonl]" \
    --set "data.tokenizer=$work/long.model" --set "$mode" --dry-run | sed -n '/^ZeRO/,$p'
  "$bin" train --config configs/bench_1b_64k.yaml --set "data.inputs=[$work/long.jsonl]" \
    --set "data.tokenizer=$work/long.model" --set data.strategy=pack --set data.units_per_step=1 --set "$mode" \
    --set "output.dir=$work/b1-${mode%%=*}" --no-progress 2>&1 | grep -E "steps|peak" || status=1
done
exit "${status:-0}"
