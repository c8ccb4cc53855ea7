"""A stand-in OpenAI-compatible chat model on loopback for `selfinstruct` tests.

It checks what it receives: the Bearer key ("test-key"), the model name ("stand-in"), and that an
answer request carries the document and the very question this server asked for that document
(HTTP 400 otherwise, which fails the run). Documents are recognised by a "DOC-<name>" marker.
Now and then it answers 429 (with Retry-After: 0) or 500, to exercise retries. A document holding
DUPQ always gets the same question (one of two such documents must be dropped as a duplicate);
one holding REFUSE gets a refusal as its answer; one holding TOOLONG gets HTTP 400 (a request
the endpoint rejects, as for a too-long document). Every request is logged as a JSON line.

Usage: instruct_server.py PORT_FILE LOG_FILE MODE   (MODE: normal | slow | silent | flood)
flood: a 200 reply with no Content-Length that streams JSON-looking bytes until the client hangs
up (at most 200 MB, so that a client without a cap still ends).
"""
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file, mode = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
state = {"n": 0, "questions": {}}


class Model(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, content=None, headers=()):
        data = b"{}" if content is None else json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": content}}],
             "usage": {"prompt_tokens": 100, "completion_tokens": 10}}).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if mode == "silent":
            time.sleep(30)
            return
        if mode == "flood":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b'{"choices": [' + b' ' * 65536
            try:
                for _ in range(3200):  # 200 MB
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if mode == "slow":
            time.sleep(0.3)
        msgs = body["messages"]
        first = msgs[0]["content"]
        doc = re.search(r"DOC-\w+", first)
        doc = doc.group(0) if doc else "?"
        kind = "answer" if "Answer the following question" in first or len(msgs) > 1 else "question"
        with lock:
            state["n"] += 1
            n = state["n"]
            with open(log_file, "a") as f:
                f.write(json.dumps({"n": n, "kind": kind, "doc": doc, "turns": len(msgs)}) + "\n")
        if self.headers.get("Authorization") != "Bearer test-key" or body.get("model") != "stand-in":
            return self.reply(401)
        if n % 5 == 0:
            return self.reply(429, headers=[("Retry-After", "0")])
        if n % 7 == 0:
            return self.reply(500)
        if "TOOLONG" in first:  # this document alone is refused, as an endpoint refuses an overlong request
            return self.reply(400)
        if kind == "question":
            if "DUPQ" in first:
                q = "What is the duplicated question?"
            else:  # distinct for every question asked about the document
                turn = first.count("User: ") + 1
                with lock:
                    k = len(state["questions"].get(doc, ()))
                q = f"What does {doc} say in part {turn} (question {k})?"
            with lock:
                state["questions"].setdefault(doc, set()).add(q)
            return self.reply(200, "  " + q + "\n")
        asked = msgs[-1]["content"] if len(msgs) > 1 else first
        known = state["questions"].get(doc, set())
        if not any(q in asked for q in known) or (len(msgs) == 1 and doc not in first):
            return self.reply(400)
        if "REFUSE" in first:
            return self.reply(200, "I'm sorry, but I can't help with that.")
        return self.reply(200, f"ANSWER for {doc}, turn {len(msgs) // 2 + 1}.")


server = ThreadingHTTPServer(("127.0.0.1", 0), Model)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.replace(port_file + ".tmp", port_file)
server.serve_forever()
