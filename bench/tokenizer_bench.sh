#!/usr/bin/env bash
# Tokenizer throughput on one core (not a test): `longalign tokenizer encode` with byte-level BPE
# tokenizer.json files (GPT-2, Llama-3 and Qwen2 style, trained here with HF `tokenizers`) beside
# HF's own encode_batch single-threaded on the same files, and beside `longalign tokenizer encode`
# with a sentencepiece BPE .model of the same vocabulary size, on two corpora: the varied parity
# corpus (tests/data/bpe_parity.py: accents, CJK, emoji, whitespace, digits) and English-like
# `synth` text. longalign times are the best of 3 runs minus its start-up (the same command on
# empty input: loading torch's libraries and the tokenizer), so they count encoding and output.
# Usage: bench/tokenizer_bench.sh [build/release/bin/longalign] [python] [vocab=16000]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/build/release/bin/longalign}"
py="${2:-$root/build/venv/bin/python}"
vocab="${3:-16000}"
helper="$root/tests/data/bpe_parity.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TOKENIZERS_PARALLELISM=false RAYON_NUM_THREADS=1

# Seconds (best of 3) of: longalign tokenizer encode -t TOK < INPUT > /dev/null
best() {
  local tok=$1 input=$2 best="" t0 t1 dt
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    "$bin" tokenizer encode -t "$tok" <"$input" >/dev/null
    t1=$(date +%s.%N)
    dt=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$dt < $best" | bc -l)" = 1 ]; then best=$dt; fi
  done
  echo "$best"
}
count_ids() { "$bin" tokenizer encode -t "$1" <"$2" | awk '$0 != "[]" { n += gsub(/,/, ",") + 1 } END { print n + 0 }'; }
row() { printf "%-8s %-12s %-26s %10s %8.2f %12.0f\n" "$1" "$2" "$3" "$4" "$5" "$(echo "$4 / $5" | bc -l)"; }

"$py" "$helper" corpus "$work/varied.txt" 200000 1
"$bin" synth -o "$work/synth.jsonl" -n 5000 --min-words 200 --max-words 2000 --seed 1 >/dev/null 2>&1
"$py" - "$work/synth.jsonl" "$work/english.txt" <<'PY'
import json, sys
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in open(sys.argv[1], encoding="utf-8"):
        for m in json.loads(line)["messages"]:
            for part in m["content"].split("\n"):
                if part:
                    out.write(part + "\n")
PY
: >"$work/empty.txt"

echo "tokens/s on one core; vocab $vocab; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf "%-8s %-12s %-26s %10s %8s %12s\n" corpus tokenizer implementation tokens seconds tokens/s
for corpus in varied english; do
  input="$work/$corpus.txt"
  mkdir -p "$work/$corpus"
  "$py" "$helper" train "$work/$corpus" "$input" "$vocab"
  "$bin" tokenizer train -i "$input" --vocab-size "$vocab" -o "$work/$corpus/sp.model" >/dev/null 2>&1
  for name in gpt2 llama3 qwen2 sp; do
    tok="$work/$corpus/$name.json"; [ "$name" = sp ] && tok="$work/$corpus/sp.model"
    n=$(count_ids "$tok" "$input")
    secs=$(echo "$(best "$tok" "$input") - $(best "$tok" "$work/empty.txt")" | bc -l)
    impl="longalign"; [ "$name" = sp ] && impl="longalign (sentencepiece)"
    row "$corpus" "$name" "$impl" "$n" "$secs"
    if [ "$name" != sp ]; then
      read -r hf_n hf_s < <("$py" "$helper" bench "$tok" "$input")
      row "$corpus" "$name" "HF tokenizers, 1 thread" "$hf_n" "$hf_s"
    fi
  done
done
echo "corpora: varied $(wc -c <"$work/varied.txt") bytes / $(wc -l <"$work/varied.txt") lines, english $(wc -c <"$work/english.txt") bytes / $(wc -l <"$work/english.txt") lines"
