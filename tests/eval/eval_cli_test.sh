#!/usr/bin/env bash
# Generation and evaluation commands end to end on a small random HF Llama (built offline by
# tests/model/hf_reference.py): generate (single and batch), eval needle (JSON + PNG) and
# eval longbench-chat against a loopback stand-in judge (retries, malformed replies, resume).
set -u
bin="$1"; py="$2"; src="$3"
tmp=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

"$py" "$src/tests/model/hf_reference.py" "$tmp/ref" >/dev/null 2>&1 || { echo "FAIL: hf_reference.py"; exit 1; }
m="$tmp/ref/gqa_untied"
"$bin" synth -o "$tmp/d.jsonl" -n 200 --min-words 20 --max-words 60 >/dev/null 2>&1
"$bin" tokenizer train -i "$tmp/d.jsonl" --vocab-size 400 -o "$m/tokenizer.model" >/dev/null 2>&1

"$bin" generate -m "$m" -p "hello there" --max-new-tokens 8 --max-context 64 >"$tmp/g1" 2>&1 && ok "generate (single prompt)" \
  || { fail "generate"; tail -3 "$tmp/g1"; }
printf '{"prompt": "one", "id": 1}\n{"query": "two", "id": 2}\n' >"$tmp/p.jsonl"
"$bin" generate -m "$m" -i "$tmp/p.jsonl" -o "$tmp/out.jsonl" --max-new-tokens 4 --max-context 64 >"$tmp/g2" 2>&1
[ "$("$py" -c "import json,sys;r=[json.loads(l) for l in open(sys.argv[1])];print(len(r), all('response' in x for x in r), r[1]['id'])" "$tmp/out.jsonl" 2>/dev/null)" = "2 True 2" ] \
  && ok "generate (batch JSONL)" || { fail "generate batch"; tail -3 "$tmp/g2"; }
"$bin" generate -m "$m" >"$tmp/g3" 2>&1; [ $? = 2 ] && ok "generate without a prompt: exit 2" || fail "generate usage"

"$bin" eval needle -m "$m" --lengths 30,50 --num-depths 3 -o "$tmp/needle" >"$tmp/n1" 2>&1 || { fail "eval needle"; tail -3 "$tmp/n1"; }
"$py" - "$tmp/needle" <<'PY' && ok "needle: results.json and a 96x96 PNG" || fail "needle outputs"
import json, struct, sys
d = sys.argv[1]
r = json.load(open(f"{d}/results.json"))
assert len(r["scores"]) == 3 and len(r["scores"][0]) == 2, r["scores"]
png = open(f"{d}/heatmap.png", "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
assert struct.unpack(">II", png[16:24]) == (2 * 48, 3 * 32), struct.unpack(">II", png[16:24])
PY

"$py" "$src/tests/eval/judge_server.py" "$tmp/port" "$tmp/count" &
server=$!
for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$tmp/port")/v1/chat/completions"
printf '%s\n' '{"idx": 0, "query": "q zero", "prompt": "long context zero", "answer": "a0"}' \
  '{"idx": 1, "query": "MALFORMED q", "prompt": "long context one", "answer": "a1"}' \
  '{"idx": 2, "query": "q two", "prompt": "long context two", "answer": "a2"}' >"$tmp/lb.jsonl"
run_lb() { TEST_JUDGE_KEY=test-key "$bin" eval longbench-chat -m "$m" --data "$tmp/lb.jsonl" --judge-url "$url" \
  --judge-key-env TEST_JUDGE_KEY --judge-model stand-in --backoff-ms 10 --max-length 64 --max-new-tokens 8 -o "$tmp/lb" >>"$tmp/lb.log" 2>&1; }
run_lb || { grep -q "without libcurl" "$tmp/lb.log" && { echo "not run: this build has no libcurl (longbench-chat judge)"; \
  echo "$fails eval check(s) failed"; exit $((fails > 0)); }; fail "longbench-chat run"; tail -5 "$tmp/lb.log"; }
"$py" - "$tmp/lb" <<'PY' && ok "longbench-chat: retry after HTTP 500, mean of scored items, malformed reply unscored" || fail "longbench-chat report"
import json, sys
rep = json.load(open(sys.argv[1] + "/report.json"))
assert rep["items"] == 3 and rep["scored"] == 2 and rep["mean_score"] == 7.0, rep
rows = {r["idx"]: r for r in map(json.loads, open(sys.argv[1] + "/results.jsonl"))}
assert rows[1]["score"] is None and "no [[score]]" in rows[1]["error"], rows[1]
PY
before=$(cat "$tmp/count")
run_lb || fail "longbench-chat re-run"
after=$(cat "$tmp/count")
# Re-run: the two scored items are skipped; only the unscored one is judged again (3 attempts).
[ $((after - before)) = 3 ] && ok "longbench-chat resumes: judged items skipped" || fail "resume made $((after - before)) requests"

if [ "$fails" -ne 0 ]; then echo "$fails eval check(s) failed"; exit 1; fi
echo "all eval checks passed"
