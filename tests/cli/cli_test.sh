#!/usr/bin/env bash
# CLI contract: exit codes (0 ok, 1 runtime, 2 usage), help/version, and `pack --input` with
# no other flag working from a tokenizer.model beside the data.
set -u
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
expect() {  # expect CODE DESCRIPTION -- COMMAND...
  local want=$1 what=$2; shift 3
  "$@" >"$tmp/out" 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; sed 's/^/    /' "$tmp/out" | tail -5; fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}
expect 0 "--help" -- "$bin" --help
expect 0 "--version" -- "$bin" --version
expect 0 "pack --help" -- "$bin" pack --help
expect 2 "no subcommand" -- "$bin"
expect 2 "unknown flag" -- "$bin" pack --no-such-flag
"$bin" --version | grep -q "^longalign " || { echo "FAIL: version text"; fails=$((fails + 1)); }

expect 0 "synth" -- "$bin" synth -o "$tmp/d/data.jsonl" -n 200 --min-words 20 --max-words 100
expect 0 "tokenizer train" -- "$bin" tokenizer train --input "$tmp/d/data.jsonl" --vocab-size 500 \
  --output "$tmp/d/tokenizer.model"
expect 0 "tokenizer train, more pieces asked than the text supports" -- "$bin" tokenizer train --input "$tmp/d/data.jsonl" \
  --vocab-size 20000 --output "$tmp/big.model"
grep -q "supports only" "$tmp/out" || { echo "FAIL: a smaller vocabulary than asked is not reported"; fails=$((fails + 1)); }
expect 0 "pack with no other flag" -- "$bin" pack --input "$tmp/d/data.jsonl" --no-progress
[ -f "$tmp/d/data.pack/plan.json" ] || { echo "FAIL: default output data.pack missing"; fails=$((fails + 1)); }
expect 2 "existing output refused" -- "$bin" pack --input "$tmp/d/data.jsonl"
expect 0 "--overwrite" -- "$bin" pack --input "$tmp/d/data.jsonl" --overwrite --strategy sort
expect 2 "unknown template" -- "$bin" pack --input "$tmp/d/data.jsonl" --template vicuna -o "$tmp/x"
expect 2 "non-positive max tokens" -- "$bin" pack --input "$tmp/d/data.jsonl" --max-tokens 0 -o "$tmp/x"
expect 2 "missing input" -- "$bin" pack --input "$tmp/nope.jsonl" -o "$tmp/x"
expect 2 "unknown weighting" -- "$bin" pack --input "$tmp/d/data.jsonl" --weighting mean -o "$tmp/x"
grep -q "pack_mean" "$tmp/out" || { echo "FAIL: weighting error does not list the choices"; fails=$((fails + 1)); }
expect 2 "units per step not a multiple of the world size" -- "$bin" pack --input "$tmp/d/data.jsonl" \
  --units-per-step 7 --world-size 2 -o "$tmp/x"
grep -q "not a multiple of --world-size 2" "$tmp/out" || { echo "FAIL: world size error unclear"; fails=$((fails + 1)); }
expect 0 "pack_mean weighting, sort for 2 ranks" -- "$bin" pack --input "$tmp/d/data.jsonl" --weighting pack_mean \
  --strategy sort --batch-size 2 --units-per-step 4 --world-size 2 -o "$tmp/pm" --no-progress
grep -q "at world size 2: useful-work efficiency" "$tmp/out" || { echo "FAIL: summary lacks the rank balance"; fails=$((fails + 1)); }
grep -q '"weight_cv"' "$tmp/pm/stats.json" || { echo "FAIL: stats.json lacks plan_quality"; fails=$((fails + 1)); }
printf '{"messages": [\n' >"$tmp/bad.jsonl"
expect 1 "malformed json" -- "$bin" pack --input "$tmp/bad.jsonl" -t "$tmp/d/tokenizer.model" -o "$tmp/x"
grep -q "bad.jsonl:1" "$tmp/out" || { echo "FAIL: error does not name bad.jsonl:1"; fails=$((fails + 1)); }
[ ! -e "$tmp/x" ] || { echo "FAIL: partial output left behind"; fails=$((fails + 1)); }

if [ "$fails" -ne 0 ]; then echo "$fails CLI check(s) failed"; exit 1; fi
echo "all CLI checks passed"
