"""A stand-in LLM judge on loopback for tests: an OpenAI-compatible /chat/completions endpoint
returning fixed judgments. The first request of the run fails with HTTP 500 (to exercise
retries); a prediction judged for the item whose question contains MALFORMED gets a reply with
no score; others get "Rating: [[7]]". Every request is counted in COUNT_FILE.

Usage: judge_server.py PORT_FILE COUNT_FILE   (binds 127.0.0.1 on a free port, writes it)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port_file, count_file = sys.argv[1], sys.argv[2]
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
        prompt = body["messages"][0]["content"]
        ok = self.headers.get("Authorization") == "Bearer test-key"
        reply = "I cannot decide." if "MALFORMED" in prompt else ("Fine. Rating: [[7]]" if ok else "Rating: [[1]]")
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = HTTPServer(("127.0.0.1", 0), Judge)
open(port_file, "w").write(str(server.server_address[1]))
server.timeout = 60
while True:  # the test kills us; handle_request returns after each request or 60 s idle
    server.handle_request()
