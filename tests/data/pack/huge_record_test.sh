#!/usr/bin/env bash
# Bounded memory on huge records: a 20 MB single-line answer packed at 2k tokens is truncated
# like any long record, and `pack`'s peak memory grows by a few copies of the line, not by the
# ~150x that encoding all of it costs (3.3 GB more before encoding stopped at max_tokens).
set -u
bin="$1"; py="$2"
source "$(dirname "${BASH_SOURCE[0]}")/../../test_lib.sh"

"$bin" synth -o "$tmp/d.jsonl" -n 100 --min-words 20 --max-words 80 >/dev/null 2>&1
"$bin" tokenizer train -i "$tmp/d.jsonl" --vocab-size 400 -o "$tmp/tok.model" >/dev/null 2>&1
"$py" - "$tmp/huge.jsonl" <<'PY'
import json, random, sys
random.seed(0)
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa"]
answer = " ".join(random.choice(words) for _ in range(3_500_000))  # ~21 MB
with open(sys.argv[1], "w") as f:
    f.write(json.dumps({"messages": [{"role": "user", "content": "Say it all."},
                                     {"role": "assistant", "content": answer}]}) + "\n")
    f.write(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}) + "\n")
PY
# Peak RSS (MB) of a pack run, and its exit code.
peak() {
  "$py" - "$@" <<'PY'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, rc)
PY
}
read -r small small_rc < <(peak "$bin" pack -i "$tmp/d.jsonl" -t "$tmp/tok.model" -o "$tmp/small" --max-tokens 2048 --no-progress)
read -r huge huge_rc < <(peak "$bin" pack -i "$tmp/huge.jsonl" -t "$tmp/tok.model" -o "$tmp/huge" --max-tokens 2048 --no-progress)
[ "$small_rc" = 0 ] && [ "$huge_rc" = 0 ] || fail "pack exit codes $small_rc, $huge_rc"
extra=$((huge - small))
[ "$extra" -lt 200 ] && ok "20 MB record: peak memory +${extra} MB over a small pack (${small} MB)" \
  || fail "20 MB record took ${huge} MB against ${small} MB for a small pack"
"$py" -c "import json,sys;s=json.load(open(sys.argv[1]));sys.exit(0 if s['sequences']==2 and s['truncated']==1 else 1)" \
  "$tmp/huge/stats.json" && ok "the huge record is kept, truncated to 2048 tokens" || fail "stats: $(cat "$tmp/huge/stats.json" 2>/dev/null | head -c 300)"
finish "huge-record"
