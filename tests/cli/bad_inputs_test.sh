#!/usr/bin/env bash
# The hostile-input corpus: every case in bad_inputs.txt (one bad flag, file, config, model or
# pack per line) must fail with its exit code (1 runtime, 2 usage) and a message holding its
# fragment, within a few seconds. A signal (exit >= 128), a hang, exit 0 or an unclear message
# fails the case. Fixtures are made once with the CLI itself: data, tokenizer, pack, and a
# two-step model, then copies of them broken one way each.
#   bad_inputs_test.sh BIN PYTHON [CASES]   (BAD_INPUTS_FILTER=regex runs the matching cases)
set -u
bin=$(realpath "$1"); py="$2"; cases="${3:-$(dirname "$0")/bad_inputs.txt}"
limit="${BAD_INPUTS_TIMEOUT:-10}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
F="$tmp/f"
mkdir -p "$F"

# --- fixtures: good ones first ---------------------------------------------------------------
setup() { "$@" >"$tmp/setup.log" 2>&1 || { echo "FAIL: fixture: $*"; tail -5 "$tmp/setup.log"; exit 1; }; }
setup "$bin" synth -o "$F/d.jsonl" -n 60 --min-words 20 --max-words 80 --seed 3
setup "$bin" tokenizer train -i "$F/d.jsonl" --vocab-size 400 -o "$F/tok.model"
setup "$bin" pack -i "$F/d.jsonl" -t "$F/tok.model" -o "$F/d.pack" --max-tokens 512 --units-per-step 2 --no-progress
cat >"$F/c.yaml" <<YAML
model: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: 512, units_per_step: 2}
train: {lr: 3.0e-3, epochs: 1, max_steps: 2, dtype: fp32, device: cpu}
checkpoint: {every_steps: 1, keep_last: 2}
output: {dir: run, log_every: 1}
YAML
setup "$bin" train -c "$F/c.yaml" --no-progress
M="$F/run/checkpoints/step-00000002"
[ -f "$M/config.json" ] || { echo "FAIL: fixture model missing"; exit 1; }

# --- fixtures: bad files ---------------------------------------------------------------------
mkdir -p "$F/adir"
mkfifo "$F/fifo"
ln -s /dev/full "$F/full"  # through a link: a rename can only ever replace the link
: >"$F/empty.jsonl"
printf '\n  \n\n' >"$F/blank.jsonl"
printf '{"messages": [\n' >"$F/bad.jsonl"
printf '[1, 2, 3]\n' >"$F/notobj.jsonl"
printf '{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}\n' >"$F/badutf8.jsonl"
printf '{"foo": 1}\n' >"$F/nomsg.jsonl"
printf '{"messages": [{"role": "wizard", "content": "a"}, {"role": "assistant", "content": "b"}]}\n' >"$F/badrole.jsonl"
printf '{"messages": "hello"}\n' >"$F/msgstr.jsonl"
printf '{"input_ids": [1, 5, 99999], "labels": [-100, 5, 99999]}\n' >"$F/oov.jsonl"
printf '{"input_ids": [1, -7, 5]}\n' >"$F/negid.jsonl"
printf '{"input_ids": [1, 5, 6], "labels": [5, 6]}\n' >"$F/lablen.jsonl"
printf '{"prompt": "fine"}\n{"prompt": 42}\n' >"$F/prompts_bad.jsonl"
printf '{"prompt": "fine"}\n{"prompt": "x"\n' >"$F/prompts_json.jsonl"
printf '{"id": 1}\n' >"$F/prompts_none.jsonl"
head -c 4096 /dev/urandom >"$F/garbage.bin"
printf 'not json at all' >"$F/notjson.json"
printf 'model: [unclosed\n' >"$F/y_syntax.yaml"
printf -- '- a\n- b\n' >"$F/y_list.yaml"
printf 'data: {max_tokens: -5}\n' >"$F/y_data_range.yaml"
printf 'data: {batch_size: abc}\n' >"$F/y_data_type.yaml"
printf 'data: {inputs: [{path: d.jsonl, ratio: .nan}]}\n' >"$F/y_ratio.yaml"
cp "$F/c.yaml" "$F/y_fifo.yaml" && sed -i 's|inputs: \[d.jsonl\]|inputs: [fifo]|' "$F/y_fifo.yaml"

# Models broken one way each (copies of the trained two-step checkpoint).
model() { rm -rf "$F/$1"; cp -r "$M" "$F/$1"; }
jset() {  # jset FILE KEY JSON-VALUE: sets a top-level key of a JSON file
  "$py" -c "import json,sys;p,k,v=sys.argv[1:];d=json.load(open(p));d[k]=json.loads(v);json.dump(d,open(p,'w'))" "$@"
}
model m_type && jset "$F/m_type/config.json" hidden_size '"32"'
model m_missing && "$py" -c "import json,sys;p=sys.argv[1];d=json.load(open(p));del d['num_hidden_layers'];json.dump(d,open(p,'w'))" "$F/m_missing/config.json"
model m_neg && jset "$F/m_neg/config.json" num_attention_heads -2
model m_huge && jset "$F/m_huge/config.json" hidden_size 100000000000
model m_heads && jset "$F/m_heads/config.json" num_key_value_heads 3
model m_shape && jset "$F/m_shape/config.json" intermediate_size 128
model m_nanrope && jset "$F/m_nanrope/config.json" rope_theta '-1'
model m_badjson && printf '{"hidden_size": ' >"$F/m_badjson/config.json"
model m_arrjson && printf '[1, 2]' >"$F/m_arrjson/config.json"
model m_cfgdir && rm "$F/m_cfgdir/config.json" && mkdir "$F/m_cfgdir/config.json"
model m_cfgfifo && rm "$F/m_cfgfifo/config.json" && mkfifo "$F/m_cfgfifo/config.json"
model m_nocfg && rm "$F/m_nocfg/config.json"
model m_noweights && rm "$F/m_noweights/model.safetensors"
model m_trunc && truncate -s 1000 "$F/m_trunc/model.safetensors"
model m_hdr && printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' | dd of="$F/m_hdr/model.safetensors" conv=notrunc status=none
model m_hdrjson && printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a": [1, 2, 3}' | dd of="$F/m_hdrjson/model.safetensors" conv=notrunc status=none
model m_badtok && cp "$F/garbage.bin" "$F/m_badtok/tokenizer.model"
model m_emptytok && : >"$F/m_emptytok/tokenizer.model"
model m_notok && rm "$F/m_notok/tokenizer.model"

# Packs broken one way each (copies of the good pack).
pack() { rm -rf "$F/$1"; cp -r "$F/d.pack" "$F/$1"; }
pyedit() {  # pyedit FILE 'python on d': edits a JSON file in place
  "$py" -c "import json,sys;p=sys.argv[1];d=json.load(open(p));$2;json.dump(d,open(p,'w'))" "$1"
}
resign() {  # resign PACK: re-records checksums.json, as a buggy writer (not bit rot) would leave it
  "$py" - "$1" <<'PY'
import json, os, sys
def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
d = sys.argv[1]
m = json.load(open(f"{d}/checksums.json"))
for name in ("header.json", "plan.json"):
    data = open(f"{d}/{name}", "rb").read()
    m["files"][name] = {"bytes": len(data), "crc32c": "%08x" % crc32c(data)}
json.dump(m, open(f"{d}/checksums.json", "w"), indent=2)
PY
}
pack p_flip && printf '\x7f' | dd of="$F/p_flip/tokens.bin" bs=1 seek=4001 conv=notrunc status=none
pack p_idx && truncate -s 500 "$F/p_idx/index.bin"
pack p_targets && truncate -s 100 "$F/p_targets/targets.bin"
pack p_planrot && pyedit "$F/p_planrot/plan.json" "d['steps'][0]['units'][0]['seqs'][0]=99999"  # not re-signed
pack p_seq && pyedit "$F/p_seq/plan.json" "d['steps'][0]['units'][0]['seqs'][0]=99999" && resign "$F/p_seq"
pack p_zero && pyedit "$F/p_zero/plan.json" "d['steps']=[]" && resign "$F/p_zero"
pack p_weight && pyedit "$F/p_weight/plan.json" "d['steps'][0]['units'][0]['weights'][0]=1e30" && resign "$F/p_weight"
pack p_nanw && pyedit "$F/p_nanw/plan.json" "d['steps'][0]['units'][0]['weights'][0]=-1.0" && resign "$F/p_nanw"
pack p_dup && pyedit "$F/p_dup/plan.json" "u=d['steps'][0]['units'][0];u['seqs'][1]=u['seqs'][0]" && resign "$F/p_dup"
pack p_rank && pyedit "$F/p_rank/plan.json" "d['world_size']=2;[u.update(rank=5) for u in d['steps'][0]['units']]" && resign "$F/p_rank"
pack p_halfrank && pyedit "$F/p_halfrank/plan.json" "d['world_size']=2;d['steps'][0]['units'][1]['rank']=0" && resign "$F/p_halfrank"
pack p_vocab && pyedit "$F/p_vocab/header.json" "d['vocab_size']=100000" && resign "$F/p_vocab"
pack p_count && pyedit "$F/p_count/header.json" "d['num_sequences']=1000" && resign "$F/p_count"
pack p_nohdr && rm "$F/p_nohdr/header.json"
pack p_hdrjson && printf '{"format": ' >"$F/p_hdrjson/header.json"
pack p_planjson && printf '{"steps": [' >"$F/p_planjson/plan.json"
pack p_noplan && rm "$F/p_noplan/plan.json"
pack p_tokdir && rm "$F/p_tokdir/tokens.bin" && mkdir "$F/p_tokdir/tokens.bin"

# Train (and resume) on a pack or checkpoint without packing anything.
export B="$bin" F M PY="$py"
export T="$bin train -c $F/c.yaml --no-progress --set data.inputs=[]"

# --- the runner ------------------------------------------------------------------------------
trim() { local s="$1"; s="${s#"${s%%[![:space:]]*}"}"; printf '%s' "${s%"${s##*[![:space:]]}"}"; }
fails=0; total=0; n=0
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  n=$((n + 1))
  IFS='|' read -r want frag desc rest <<<"$line"
  want=$(trim "$want"); frag=$(trim "$frag"); desc=$(trim "$desc")
  cmd=$(trim "${rest%%|?*}")
  after=""
  [ "$rest" != "${rest#*| }" ] && after=$(trim "${rest#*| }")
  [ -n "${BAD_INPUTS_FILTER:-}" ] && ! grep -qE -- "$BAD_INPUTS_FILTER" <<<"$desc $cmd" && continue
  total=$((total + 1))
  export W="$tmp/w/$n"
  mkdir -p "$W"
  start=$(date +%s.%N)
  timeout -k 2 "$limit" bash -c "$cmd" </dev/null >"$tmp/out" 2>&1
  got=$?
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
  why=""
  if [ "$got" = 124 ] || [ "$got" = 137 ]; then why="hung or killed (exit $got, limit ${limit}s)"
  elif [ "$got" -ge 128 ]; then why="killed by signal $((got - 128))"
  elif [ "$got" = 0 ]; then why="exit 0 on bad input"
  elif [ "$got" != "$want" ]; then why="exit $got, expected $want"
  elif ! grep -qiF -- "$frag" "$tmp/out"; then why="message lacks '$frag'"
  elif [ -n "$after" ] && ! bash -c "$after" >/dev/null 2>&1; then why="afterwards: $after does not hold"
  fi
  if [ -n "$why" ]; then
    echo "FAIL [$n] $desc: $why (${secs}s)"
    echo "    \$ $cmd"
    grep -v '^Run with --help' "$tmp/out" | tail -3 | cut -c1-300 | sed 's/^/    /'
    fails=$((fails + 1))
  else
    echo "ok [$n] $desc (${secs}s): $(grep -v '^Run with --help' "$tmp/out" | tail -1 | cut -c1-160)"
  fi
  rm -rf "$W"
done <"$cases"

echo "$((total - fails)) of $total bad-input cases pass"
[ "$fails" -eq 0 ]
