#!/usr/bin/env bash
# tokenizer.json parity: byte-level BPE tokenizers trained offline with Hugging Face `tokenizers`
# in the styles of GPT-2 (also with add_prefix_space and stripping added tokens), Llama-3 and
# Qwen2, and a varied corpus (accents, decomposed text, CJK, emoji, whitespace runs, contractions
# in any case, digits, punctuation, special tokens in text). `longalign tokenizer encode` must
# give HF's ids on every line. Skipped (exit 0) when the python lacks `tokenizers`.
set -u
bin="$1"; py="${2:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../../test_lib.sh"

need_module tokenizers
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

# pack end to end with the Llama-3-style tokenizer.json: the template is detected from its special
# tokens, and every target is an answer token or the <|eot_id|> that closes it.
"$bin" synth -o "$tmp/chat.jsonl" -n 40 --min-words 10 --max-words 40 >/dev/null 2>&1
if "$bin" pack -i "$tmp/chat.jsonl" -t "$tmp/llama3.json" -o "$tmp/l3.pack" --max-tokens 4096 --no-progress \
    >"$tmp/pack.log" 2>&1 && grep -q "template llama3" "$tmp/pack.log" && [ -f "$tmp/l3.pack/tokenizer.json" ]; then
  "$py" - "$tmp/l3.pack" "$tmp/llama3.json" <<'PY' && ok "pack with tokenizer.json: llama3 detected, answers + <|eot_id|> are the targets" \
    || fail "pack with tokenizer.json: layout"
import json, sys
import numpy as np
from tokenizers import Tokenizer
d, tok = sys.argv[1], Tokenizer.from_file(sys.argv[2])
ids = np.fromfile(f"{d}/tokens.bin", dtype=np.int32)
tgt = np.fromfile(f"{d}/targets.bin", dtype=np.uint8)
eot, bot = tok.token_to_id("<|eot_id|>"), tok.token_to_id("<|begin_of_text|>")
idx = np.fromfile(f"{d}/index.bin", dtype=np.dtype([("offset", "<u8"), ("length", "<u4"), ("n", "<u4")]))
for off, n, _ in idx:
    s, t = ids[off:off + n], tgt[off:off + n]
    assert s[0] == bot, "sequence does not start with <|begin_of_text|>"
    text = tok.decode([int(x) for x in s], skip_special_tokens=False)
    assert "<|start_header_id|>assistant<|end_header_id|>" in text, text[:200]
    # each target run ends with <|eot_id|> and is preceded by the assistant header
    runs = np.flatnonzero(np.diff(np.concatenate([[0], t, [0]])))
    for a, b in zip(runs[0::2], runs[1::2]):
        assert s[b - 1] == eot, "a target run does not end with <|eot_id|>"
        head = tok.decode([int(x) for x in s[max(0, a - 4):a]], skip_special_tokens=False)
        assert head.endswith("<|end_header_id|>\n\n"), head
PY
else
  fail "pack with tokenizer.json: $(tail -2 "$tmp/pack.log")"
fi

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
