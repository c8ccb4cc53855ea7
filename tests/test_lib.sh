# Shared by the shell tests that talk to a loopback stand-in server: a temp dir removed on exit
# (with the server), ok/fail counters, and start_server. Source it after setting `py`.
tmp=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# start_server SCRIPT ARGS...: stops the running server, starts SCRIPT PORT_FILE ARGS... and sets
# `url` to its chat-completions endpoint once it has written its port.
start_server() {
  local script=$1; shift
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -f "$tmp/port"
  "$py" "$script" "$tmp/port" "$@" &
  server=$!
  for _ in $(seq 1 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  url="http://127.0.0.1:$(cat "$tmp/port")/v1/chat/completions"
}

# finish NAME: the closing line and exit status.
finish() {
  if [ "$fails" -ne 0 ]; then echo "$fails $1 check(s) failed"; exit 1; fi
  echo "all $1 checks passed"
}
