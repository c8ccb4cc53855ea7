"""A stand-in LLM judge on loopback for tests: an OpenAI-compatible /chat/completions endpoint
returning fixed judgments. The first request of the run fails with HTTP 500 (to exercise
retries); a prediction judged for the item whose question contains MALFORMED gets a reply with
no score; others get "Rating: [[7]]". Every request is counted in COUNT_FILE.

In `fewshot` mode it checks LongBench-Chat's protocol instead: the benchmark's system prompt,
and a prompt holding the question's own three scored examples (markers FS-<n>-<k> for the
question marked Q<n>) and no other question's. Then it scores [[8]]; anything else gets [[1]].
A question marked SLOW is never answered in time (the client's timeout must fire).

Usage: judge_server.py PORT_FILE COUNT_FILE [fewshot]   (binds 127.0.0.1 on a free port, writes it)
"""
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, count_file = sys.argv[1], sys.argv[2]
fewshot = len(sys.argv) > 3 and sys.argv[3] == "fewshot"
SYSTEM = "You're a good assistant at evaluating the quality of texts."


def fewshot_reply(messages):
    if len(messages) != 2 or messages[0] != {"role": "system", "content": SYSTEM}:
        return "Rating: [[1]]"
    prompt = messages[1]["content"]
    q = re.findall(r"Q(\d+)", prompt)
    shots = re.findall(r"FS-(\d+)-(\d+)", prompt)
    ok = len(set(q)) == 1 and sorted(k for _, k in shots) == ["1", "2", "3"] and {n for n, _ in shots} == set(q)
    return "The answer matches the reference. Rating: [[8]]" if ok else "Rating: [[1]]"
state = {"n": 0}


class Judge(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state["n"] += 1
        open(count_file, "w").write(str(state["n"]))
        if state["n"] == 1:
            self.send_response(500)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        if "SLOW" in prompt:
            time.sleep(5)
            return
        ok = self.headers.get("Authorization") == "Bearer test-key"
        if fewshot:
            reply = fewshot_reply(body["messages"]) if ok else "Rating: [[1]]"
        else:
            reply = "I cannot decide." if "MALFORMED" in prompt else ("Fine. Rating: [[7]]" if ok else "Rating: [[1]]")
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", 0), Judge)
server.daemon_threads = True
open(port_file, "w").write(str(server.server_address[1]))
server.timeout = 60
while True:  # the test kills us; handle_request returns after each request or 60 s idle
    server.handle_request()
