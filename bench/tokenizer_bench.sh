#!/usr/bin/env bash
# Tokenizer throughput (not a test), in two parts.
#
# encode: one core. `longalign tokenizer encode` with byte-level BPE tokenizer.json files (GPT-2,
# Llama-3 and Qwen2 style, trained here with HF `tokenizers`) beside HF's own encode_batch
# single-threaded on the same files, and beside `longalign tokenizer encode` with a sentencepiece
# BPE .model of the same vocabulary size, on two corpora: the varied parity corpus
# (tests/data/tokenize/bpe_parity.py: accents, CJK, emoji, whitespace, digits) and English-like `synth`
# text. longalign times are the best of 3 runs minus its start-up (the same command on empty
# input: loading torch's libraries and the tokenizer), so they count encoding and output.
#
# pack: all cores. `longalign pack` end to end (process start, JSONL parsing, llama2 template,
# sentencepiece, dataset and plan written) beside its speed limit, plain sentencepiece >= 0.2 from
# Python encoding the very texts pack encodes on as many threads (bench/pack_encode_peer.py; not
# counting its start-up, loading or rendering). Two sets of chat records: 2,000 LongAlign-like
# `synth` records (60% long, 1k-8k words) and the varied corpus cut into records of 50+50 lines,
# each with a sentencepiece BPE model trained on it. The token counts of both sides must agree
# (ids plus pack's BOS/EOS), which shows that both encoded the same text. pack runs as it is
# (sentencepiece BPE encoded word by word through its cache, src/data/tokenize/tokenizer.cpp) and with
# LONGALIGN_SPM_WORD_CACHE=0 (sentencepiece's own Encode of each text). Best of 3 runs each.
#
# Usage: bench/tokenizer_bench.sh [--only encode|pack] [build/release/bin/longalign] [python] [vocab=16000]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
only=all
if [ "${1:-}" = --only ]; then only="${2:?--only needs encode or pack}"; shift 2; fi
case "$only" in all|encode|pack) ;; *) echo "tokenizer_bench.sh: --only takes encode or pack, not $only" >&2; exit 2 ;; esac
bin="${1:-$root/build/release/bin/longalign}"
py="${2:-$root/build/venv/bin/python}"
vocab="${3:-16000}"
helper="$root/tests/data/tokenize/bpe_parity.py"
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
if [ "$only" != pack ]; then
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
fi

# ---- pack end to end beside raw sentencepiece 0.2 on all cores ----
if [ "$only" != encode ]; then
  peer="$root/bench/pack_encode_peer.py"
  "$py" -c 'import sentencepiece' 2>/dev/null ||
    { echo "tokenizer_bench.sh: $py lacks the sentencepiece package (pip install 'sentencepiece>=0.2')" >&2; exit 1; }
  threads=$(nproc)
  echo
  echo "pack end to end vs raw sentencepiece $("$py" -c 'import sentencepiece;print(sentencepiece.__version__)') encode," \
       "$threads threads each; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  "$bin" --version
  printf "%-8s %6s %9s %7s %10s %7s %10s %7s %10s %6s %6s\n" records vocab tokens "pack s" "pack tok/s" \
         "nocache" "tok/s" "spm s" "spm tok/s" ratio ratio0
  mkdir -p "$work/pk"
  "$bin" synth -o "$work/pk/synth.jsonl" -n 2000 --long-fraction 0.6 --min-words 1000 --max-words 8000 --seed 1 >/dev/null 2>&1
  "$py" "$peer" records "$work/varied.txt" "$work/pk/varied.jsonl" 50
  for set in synth varied; do
    data="$work/pk/$set.jsonl" model="$work/pk/$set.model"
    "$bin" tokenizer train -i "$data" --vocab-size "$vocab" -o "$model" >/dev/null 2>&1
    pieces=$("$py" -c 'import sys, sentencepiece as s; print(s.SentencePieceProcessor(model_file=sys.argv[1]).get_piece_size())' "$model")
    # pack as it runs, then with sentencepiece's own Encode for every text (no word cache)
    pack_best="" pack_tokens="" plain_best=""
    for _ in 1 2 3; do
      for mode in cached plain; do
        t0=$(date +%s.%N)
        out=$(LONGALIGN_SPM_WORD_CACHE=$([ "$mode" = plain ] && echo 0 || echo 1) "$bin" pack -i "$data" -t "$model" \
              -o "$work/pk/$set.pack" --overwrite --no-progress --threads "$threads" 2>/dev/null)
        t1=$(date +%s.%N)
        dt=$(echo "$t1 - $t0" | bc -l)
        tokens=$(sed -n 's/^tokens \([0-9]*\) .*/\1/p' <<<"$out")
        if [ "$mode" = cached ]; then
          pack_tokens=$tokens
          if [ -z "$pack_best" ] || [ "$(echo "$dt < $pack_best" | bc -l)" = 1 ]; then pack_best=$dt; fi
        else
          [ "$tokens" = "$pack_tokens" ] || { echo "tokenizer_bench.sh: $set: the word cache changed the token count" >&2; exit 1; }
          if [ -z "$plain_best" ] || [ "$(echo "$dt < $plain_best" | bc -l)" = 1 ]; then plain_best=$dt; fi
        fi
      done
    done
    read -r spm_ids specials spm_best < <("$py" "$peer" encode "$data" "$model" "$threads")
    if [ "$((spm_ids + specials))" != "$pack_tokens" ]; then
      echo "tokenizer_bench.sh: $set: pack wrote $pack_tokens tokens, sentencepiece gave $spm_ids ids + $specials BOS/EOS:" \
           "they did not encode the same text" >&2
      exit 1
    fi
    pack_rate=$(echo "$pack_tokens / $pack_best" | bc -l) spm_rate=$(echo "$spm_ids / $spm_best" | bc -l)
    plain_rate=$(echo "$pack_tokens / $plain_best" | bc -l)
    printf "%-8s %6s %9s %7.2f %10.0f %7.2f %10.0f %7.2f %10.0f %6.2f %6.2f\n" "$set" "$pieces" "$pack_tokens" \
           "$pack_best" "$pack_rate" "$plain_best" "$plain_rate" "$spm_best" "$spm_rate" \
           "$(echo "$pack_rate / $spm_rate" | bc -l)" "$(echo "$plain_rate / $spm_rate" | bc -l)"
  done
  echo "records: synth $(wc -l <"$work/pk/synth.jsonl") ($(wc -c <"$work/pk/synth.jsonl") bytes), varied" \
       "$(wc -l <"$work/pk/varied.jsonl") ($(wc -c <"$work/pk/varied.jsonl") bytes); ratio: pack over spm;" \
       "nocache / ratio0: pack with LONGALIGN_SPM_WORD_CACHE=0 (sentencepiece's own Encode of each text)"
fi
