#!/usr/bin/env bash
# sentencepiece parity: `longalign tokenizer encode` with sentencepiece models must give the ids of
# the `sentencepiece` Python package (the library's own Encode of each whole line) on a varied
# corpus (accents, CJK, emoji, whitespace runs, digits, special-token text, unknown characters).
# The models cover both of longalign's paths: the word-cached BPE path (Llama-2-like: byte
# fallback, identity normalization, kept whitespace runs, user-defined symbols; NFKC without byte
# fallback, where a run of unknown characters is one unk id; longalign's own trainer) and
# sentencepiece's own path for models outside its conditions (Unigram, pieces that span words,
# whitespace as suffix), checked through `-v`'s note of the path taken.
# Skipped (exit 0) when the python lacks `sentencepiece`. The third argument is the C++ library's
# version (from tests/CMakeLists.txt; empty when unknown): versions differ in how Unigram breaks ties
# between equal-score segmentations (0.2.1 and 0.2.3 split 23 nines as 12+11 and 11+12), so the
# Unigram model is compared only when the Python package has that version; every other model always.
set -u
bin="$1"; py="${2:-}"; lib_version="${3:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../../test_lib.sh"

need_module sentencepiece
py_version=$("$py" -c 'import sentencepiece; print(sentencepiece.__version__)')
"$py" "$here/bpe_parity.py" corpus "$tmp/varied.txt" 6000 11 || { echo "FAIL: corpus"; exit 1; }
"$bin" synth -o "$tmp/synth.jsonl" -n 60 --min-words 50 --max-words 400 --seed 3 >/dev/null 2>&1
# Training text: English-like synth text and half of the varied corpus; the other half is unseen.
"$py" - "$tmp/synth.jsonl" "$tmp/varied.txt" "$tmp/train.txt" "$tmp/corpus.txt" <<'PY' || { echo "FAIL: corpus"; exit 1; }
import json, sys
synth, varied, train, corpus = sys.argv[1:]
text = [p for line in open(synth, encoding="utf-8") for m in json.loads(line)["messages"]
        for p in m["content"].split("\n") if p]
lines = open(varied, "rb").read().decode("utf-8").split("\n")[:-1]
with open(train, "w", encoding="utf-8", newline="") as f:
    f.write("\n".join(text + lines[::2]) + "\n")
with open(corpus, "w", encoding="utf-8", newline="") as f:
    # unseen varied lines, synth lines, and text full of rare characters (unknown to small models)
    f.write("\n".join(lines[1::2] + text[:500] + ["ᚠᛇᚻ ᚠᛇᚻ 𠜎𠜱𠝹 x 𠜎 ꦗꦮ ꦗ", "  leading  and  double  spaces  ",
                                                   "tab\there", "[INST]<|user|>New York", ""]) + "\n")
PY

# name: trainer options (the word-cached path is expected unless the name says "plain")
"$py" - "$tmp" <<'PY' || { echo "FAIL: training"; exit 1; }
import sys, sentencepiece as spm
d = sys.argv[1]
common = dict(input=f"{d}/train.txt", vocab_size=1500, minloglevel=2, hard_vocab_limit=False)
models = {
    "llama": dict(model_type="bpe", byte_fallback=True, normalization_rule_name="identity",
                  remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, split_digits=True,
                  user_defined_symbols=["[INST]", "<|user|>"], character_coverage=0.9995),
    "nfkc_unk": dict(model_type="bpe", character_coverage=0.98),
    "plain_unigram": dict(model_type="unigram"),
    "plain_span": dict(model_type="bpe", split_by_whitespace=False),
    "plain_suffix": dict(model_type="bpe", treat_whitespace_as_suffix=True),
}
for name, opts in models.items():
    spm.SentencePieceTrainer.train(model_prefix=f"{d}/{name}", **common, **opts)
PY
"$bin" tokenizer train -i "$tmp/train.txt" --vocab-size 1500 -o "$tmp/longalign.model" >/dev/null 2>&1 ||
  { echo "FAIL: longalign tokenizer train"; exit 1; }

lines=$(wc -l <"$tmp/corpus.txt")
for name in llama nfkc_unk longalign plain_unigram plain_span plain_suffix; do
  model="$tmp/$name.model"
  if [ "$name" = plain_unigram ] && [ -n "$lib_version" ] && [ "$py_version" != "$lib_version" ]; then
    echo "skipped: plain_unigram, as Python sentencepiece $py_version ($py) and the library's $lib_version" \
         "break Unigram's equal-score ties differently; scripts/setup.sh installs matching versions"
    continue
  fi
  "$py" - "$model" "$tmp/corpus.txt" >"$tmp/$name.sp" <<'PY' || { fail "$name: python encode"; continue; }
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
lines = open(sys.argv[2], "rb").read().decode("utf-8").split("\n")[:-1]
print("\n".join("[" + ",".join(map(str, ids)) + "]" for ids in sp.encode(lines)))
PY
  if ! "$bin" -v tokenizer encode -t "$model" <"$tmp/corpus.txt" >"$tmp/$name.ours" 2>"$tmp/$name.err"; then
    fail "$name: longalign tokenizer encode: $(head -c 300 "$tmp/$name.err")"
    continue
  fi
  path="word-cached"; [[ "$name" == plain_* ]] && path="sentencepiece's own"
  if ! grep -q "$path" "$tmp/$name.err"; then
    fail "$name: expected $path encoding; the log says: $(grep -m1 'sentencepiece model' "$tmp/$name.err")"
  fi
  bad=$(paste -d '\t' "$tmp/$name.sp" "$tmp/$name.ours" | awk -F '\t' '$1 != $2 { n++ } END { print n + 0 }')
  if [ "$(wc -l <"$tmp/$name.ours")" -ne "$lines" ] || [ "$bad" -ne 0 ]; then
    fail "$name: $bad of $lines lines differ from sentencepiece; first:"
    paste -d '\t' "$tmp/$name.sp" "$tmp/$name.ours" | awk -F '\t' '$1 != $2 { print NR": spm  "$1"\n   ours "$2; exit }'
  else
    ok "$name ($path path): $lines lines, $(awk '$0 != "[]" { n += gsub(/,/, ",") + 1 } END { print n + 0 }' \
        "$tmp/$name.sp") ids identical to sentencepiece"
  fi
done

# Unknown characters are really exercised: the NFKC model's ids hold unk.
unk=$("$py" -c 'import sys, sentencepiece as s; print(s.SentencePieceProcessor(model_file=sys.argv[1]).unk_id())' \
      "$tmp/nfkc_unk.model")
if grep -qE "(\[|,)$unk(,|\])" "$tmp/nfkc_unk.sp"; then ok "nfkc_unk: unknown characters present"
else fail "nfkc_unk: no unk id in the corpus; the unk fusion is untested"; fi

finish spm_parity
