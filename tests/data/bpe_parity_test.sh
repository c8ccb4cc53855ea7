#!/usr/bin/env bash
# tokenizer.json parity: byte-level BPE tokenizers trained offline with Hugging Face `tokenizers`
# in the styles of GPT-2 (also with add_prefix_space and stripping added tokens), Llama-3 and
# Qwen2, and a varied corpus (accents, decomposed text, CJK, emoji, whitespace runs, contractions
# in any case, digits, punctuation, special tokens in text). `longalign tokenizer encode` must
# give HF's ids on every line. Skipped (exit 0) when the python lacks `tokenizers`.
set -u
bin="$1"; py="${2:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../test_lib.sh"

if [ -z "$py" ] || ! "$py" -c 'import tokenizers' 2>/dev/null; then
  echo "skipped: $py has no tokenizers package"
  exit 0
fi
helper="$here/bpe_parity.py"
export TOKENIZERS_PARALLELISM=false
"$py" "$helper" corpus "$tmp/corpus.txt" 4000 7 || { echo "FAIL: corpus"; exit 1; }
"$py" "$helper" train "$tmp" "$tmp/corpus.txt" 3000 || { echo "FAIL: training"; exit 1; }
lines=$(wc -l <"$tmp/corpus.txt")

for name in gpt2 gpt2_prefix llama3 qwen2; do
  "$py" "$helper" encode "$tmp/$name.json" "$tmp/corpus.txt" >"$tmp/$name.hf" || { fail "$name: HF encode"; continue; }
  if ! "$bin" tokenizer encode -t "$tmp/$name.json" <"$tmp/corpus.txt" >"$tmp/$name.ours" 2>"$tmp/$name.err"; then
    fail "$name: longalign tokenizer encode: $(head -c 300 "$tmp/$name.err")"
    continue
  fi
  bad=$(paste -d '\t' "$tmp/$name.hf" "$tmp/$name.ours" | awk -F '\t' '$1 != $2 { n++ } END { print n + 0 }')
  if [ "$(wc -l <"$tmp/$name.ours")" -ne "$lines" ] || [ "$bad" -ne 0 ]; then
    fail "$name: $bad of $lines lines differ from HF; first:"
    paste -d '\t' "$tmp/$name.hf" "$tmp/$name.ours" | awk -F '\t' '$1 != $2 { print NR": HF "$1"\n   ours "$2; exit }'
  else
    ok "$name: $lines lines, $(awk '$0 != "[]" { n += gsub(/,/, ",") + 1 } END { print n + 0 }' "$tmp/$name.hf") ids identical to HF"
  fi
done

# A sentencepiece model goes through the same command.
"$bin" tokenizer train -i "$tmp/corpus.txt" --vocab-size 600 -o "$tmp/sp.model" >/dev/null 2>&1
if [ "$("$bin" tokenizer encode -t "$tmp/sp.model" <"$tmp/corpus.txt" | wc -l)" -eq "$lines" ]; then
  ok "sentencepiece model through tokenizer encode"
else
  fail "sentencepiece model through tokenizer encode"
fi

# A malformed file is an error naming the file and the key.
printf '{"model": {"type": "WordPiece", "vocab": {}}}' >"$tmp/bad.json"
msg=$(echo hi | "$bin" tokenizer encode -t "$tmp/bad.json" 2>&1); rc=$?
if [ "$rc" -eq 1 ] && [[ "$msg" == *"$tmp/bad.json: model.type is WordPiece; only BPE is supported"* ]]; then
  ok "malformed tokenizer.json: exit 1, $msg"
else
  fail "malformed tokenizer.json: exit $rc, $msg"
fi

finish bpe_parity
