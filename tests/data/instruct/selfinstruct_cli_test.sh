#!/usr/bin/env bash
# `longalign selfinstruct` end to end against a loopback stand-in model (instruct_server.py, which
# answers 429 and 500 now and then and checks what it receives): N documents -> N well-formed
# records holding their document; drops (duplicate question, refusal, short document) counted;
# a re-run sends no request; a killed run resumes to exactly N; a server that never answers is
# a clear error after the retries; folder input, multi-turn, bad input.
set -u
bin="$1"; py="$2"; src="$3"
. "$src/tests/test_lib.sh"
model() { start_server "$src/tests/data/instruct/instruct_server.py" "$tmp/requests.log" "$1"; }  # MODE
requests() { [ -f "$tmp/requests.log" ] && wc -l <"$tmp/requests.log" || echo 0; }
si() {  # OUTPUT [flags...]
  local out=$1; shift
  TEST_KEY=test-key "$bin" selfinstruct --docs "$tmp/docs.jsonl" --endpoint "$url" --model stand-in \
    --key-env TEST_KEY -o "$out" --min-doc-words 20 --backoff-ms 10 --no-progress "$@"
}

words="lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua"
"$py" - "$tmp/docs.jsonl" "$words" <<'PY'
import json, sys
out, words = sys.argv[1], sys.argv[2]
docs = [(f"d{i}", f"DOC-d{i} {words} {words}") for i in range(1, 6)]
docs += [("dup1", f"DOC-dup1 DUPQ {words} {words}"), ("dup2", f"DOC-dup2 DUPQ {words} {words}"),
         ("ref", f"DOC-ref REFUSE {words} {words}"), ("big", f"DOC-big TOOLONG {words} {words}"),
         ("short", "DOC-short only a few words")]
with open(out, "w") as f:
    for i, t in docs:
        f.write(json.dumps({"id": i, "text": t}) + "\n")
PY

model normal
si "$tmp/out.jsonl" --concurrency 3 >"$tmp/log1" 2>&1 || {
  grep -q "without libcurl" "$tmp/log1" && { echo "not run: this build has no libcurl (selfinstruct)"; exit 0; }
  fail "first run"; tail -5 "$tmp/log1"; }
"$py" - "$tmp/out.jsonl" "$tmp/docs.jsonl" "$tmp/out.jsonl.dropped" <<'PY' \
  && ok "10 documents: 6 records with their documents; a duplicate question, a refusal and a rejected request dropped; 1 too short" \
  || { fail "records"; cat "$tmp/log1" | tail -8; }
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
docs = {d["id"]: d["text"] for d in map(json.loads, open(sys.argv[2]))}
dropped = [json.loads(l) for l in open(sys.argv[3])]
assert len(recs) == 6, len(recs)
assert sorted(d["reason"] for d in dropped) == ["duplicate_question", "refused_answer", "rejected_or_filtered"], dropped
ids = [r["source"]["doc_id"] for r in recs]
assert len(set(ids)) == 6 and not {"short", "ref", "big"} & set(ids) and len({"dup1", "dup2"} & set(ids)) == 1, ids
for r in recs:
    m, s = r["messages"], r["source"]
    assert [x["role"] for x in m] == ["user", "assistant"], m
    assert m[0]["content"].startswith(docs[s["doc_id"]]), "the user turn must hold the document"
    assert m[0]["content"].endswith(s["question"]) and s["question"] == s["question"].strip()
    assert m[1]["content"] == f"ANSWER for DOC-{s['doc_id']}, turn 1.", m[1]
    assert s["task"] in ("general_qa", "summary", "reasoning", "extraction") and s["model"] == "stand-in"
    assert s["job"] == s["doc_id"] + "#0"
PY
grep -q "retries [1-9]" "$tmp/log1" && grep -q "skipped as too short 1" "$tmp/log1" \
  && ok "summary counts retries (429/500 answered) and skipped documents" || { fail "summary"; tail -6 "$tmp/log1"; }

before=$(requests)
si "$tmp/out.jsonl" >"$tmp/log2" 2>&1 || fail "re-run"
[ "$(requests)" = "$before" ] && [ "$(wc -l <"$tmp/out.jsonl")" = 6 ] && grep -q "already done 9" "$tmp/log2" \
  && ok "re-run: no request sent, no record duplicated" || { fail "re-run sent $(($(requests) - before)) requests"; tail -4 "$tmp/log2"; }

# Killed mid-run (slow model, one request at a time), then resumed: exactly N records.
head -5 "$tmp/docs.jsonl" >"$tmp/five.jsonl"
model slow
TEST_KEY=test-key "$bin" selfinstruct --docs "$tmp/five.jsonl" --endpoint "$url" --model stand-in --key-env TEST_KEY \
  -o "$tmp/k.jsonl" --min-doc-words 20 --per-doc 3 --concurrency 1 --backoff-ms 10 --no-progress >"$tmp/log3" 2>&1 &
pid=$!
for _ in $(seq 1 200); do [ -f "$tmp/k.jsonl" ] && [ "$(wc -l <"$tmp/k.jsonl")" -ge 3 ] && break; sleep 0.05; done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
partial=$(wc -l <"$tmp/k.jsonl")
model normal
TEST_KEY=test-key "$bin" selfinstruct --docs "$tmp/five.jsonl" --endpoint "$url" --model stand-in --key-env TEST_KEY \
  -o "$tmp/k.jsonl" --min-doc-words 20 --per-doc 3 --concurrency 2 --backoff-ms 10 --no-progress >"$tmp/log4" 2>&1 \
  || { fail "resume after kill"; tail -4 "$tmp/log4"; }
"$py" -c "
import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
jobs=[x['source']['job'] for x in r]
assert len(r)==15 and len(set(jobs))==15, (len(r), len(set(jobs)))" "$tmp/k.jsonl" \
  && ok "killed after $partial record(s), resumed to exactly 15 distinct records" || fail "kill/resume gave $(wc -l <"$tmp/k.jsonl") records"

# A model that never answers: a clear error after the retries, quickly, and nothing written.
model silent
t0=$(date +%s)
si "$tmp/silent.jsonl" --timeout 1 --retries 2 --concurrency 1 >"$tmp/log5" 2>&1; rc=$?
t1=$(date +%s)
[ "$rc" = 1 ] && grep -q "failed" "$tmp/log5" && grep -qi "timeout\|timed out" "$tmp/log5" && grep -q "re-run" "$tmp/log5" \
  && [ $((t1 - t0)) -lt 20 ] && [ ! -s "$tmp/silent.jsonl" ] \
  && ok "silent model: exit 1 after the retries in $((t1 - t0)) s, saying why" || { fail "silent model (exit $rc, $((t1 - t0)) s)"; tail -4 "$tmp/log5"; }

# An endpoint whose reply never ends (no Content-Length, streaming): cut at --max-reply-bytes, not
# retried, exit 1 saying so, in bounded time and memory.
model flood
t0=$(date +%s)
si "$tmp/flood.jsonl" --max-reply-bytes 1048576 --retries 1 --concurrency 1 >"$tmp/log12" 2>&1; rc=$?
t1=$(date +%s)
[ "$rc" = 1 ] && grep -q "larger than 1048576 bytes" "$tmp/log12" && [ $((t1 - t0)) -lt 30 ] \
  && ok "endless reply: cut at 1 MiB, exit 1 in $((t1 - t0)) s, saying so" || { fail "endless reply (exit $rc, $((t1 - t0)) s)"; tail -3 "$tmp/log12"; }

# A folder of .txt/.md documents, two turns each.
model normal
mkdir -p "$tmp/folder"
echo "DOC-alpha $words $words" >"$tmp/folder/alpha.txt"
echo "DOC-beta $words $words" >"$tmp/folder/beta.md"
echo "not a document" >"$tmp/folder/notes.json"
TEST_KEY=test-key "$bin" selfinstruct --docs "$tmp/folder" --endpoint "$url" --model stand-in --key-env TEST_KEY \
  -o "$tmp/f.jsonl" --min-doc-words 20 --turns 2 --backoff-ms 10 --no-progress >"$tmp/log6" 2>&1 || { fail "folder run"; tail -4 "$tmp/log6"; }
"$py" -c "
import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
assert sorted(x['source']['doc_id'] for x in r)==['alpha.txt','beta.md'], r
for x in r:
    m=x['messages']; assert [y['role'] for y in m]==['user','assistant']*2, m
    assert m[3]['content'].endswith('turn 2.') and 'part 2' in m[2]['content'], m" "$tmp/f.jsonl" \
  && ok "folder input, two turns per record" || fail "folder/multi-turn records"

# The records are ready for pack.
"$bin" tokenizer train -i "$tmp/out.jsonl" --vocab-size 400 -o "$tmp/tok.model" >/dev/null 2>&1
"$bin" pack -i "$tmp/out.jsonl" -t "$tmp/tok.model" -o "$tmp/pack" --max-tokens 4096 --no-progress >"$tmp/log7" 2>&1 \
  && grep -q "sequences 6 " "$tmp/log7" && ok "pack reads the records" || { fail "pack of selfinstruct output"; tail -3 "$tmp/log7"; }

# An output that another tool wrote (its last line lacks a newline) is refused and left intact.
printf '{"messages": []}\n{"messages": [1]}' >"$tmp/theirs.jsonl"
cp "$tmp/theirs.jsonl" "$tmp/theirs.orig"
si "$tmp/theirs.jsonl" >"$tmp/log11" 2>&1
[ $? = 2 ] && cmp -s "$tmp/theirs.jsonl" "$tmp/theirs.orig" && grep -q "theirs.jsonl:1" "$tmp/log11" \
  && ok "another tool's file as --output: exit 2, file untouched" || { fail "foreign output file"; tail -2 "$tmp/log11"; }

# Bad input names the line; bad options are usage errors.
printf '{"id": "a", "text": "fine"}\n{"id": "b", "txt": "typo"}\n' >"$tmp/bad.jsonl"
TEST_KEY=test-key "$bin" selfinstruct --docs "$tmp/bad.jsonl" --endpoint "$url" --model stand-in -o "$tmp/b.jsonl" >"$tmp/log8" 2>&1
[ $? = 2 ] && grep -q "bad.jsonl:2" "$tmp/log8" && ok "malformed document line: exit 2 naming bad.jsonl:2" || fail "bad docs"
si "$tmp/c.jsonl" --task-types general_qa,poetry >"$tmp/log9" 2>&1
[ $? = 2 ] && grep -q "poetry" "$tmp/log9" && ok "unknown task type: exit 2" || fail "task type check"
si "$tmp/folder" >"$tmp/log10" 2>&1
[ $? = 2 ] && grep -q "is a directory" "$tmp/log10" && ok "output that is a directory: exit 2" || fail "output directory check"

finish selfinstruct
