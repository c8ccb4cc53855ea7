# Shared by the shell tests: a temp dir removed on exit (with the loopback stand-in server, for
# the tests that talk to one), ok/fail counters, start_server and need_module. Source it after
# setting `py`.
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

# need_module MODULE: ends the test as skipped (exit 0) when `py` is unset or lacks MODULE.
need_module() {
  if [ -z "${py:-}" ] || ! "$py" -c "import $1" 2>/dev/null; then
    echo "skipped: ${py:-no python} has no $1 package"
    exit 0
  fi
}

# finish NAME: the closing line and exit status.
finish() {
  if [ "$fails" -ne 0 ]; then echo "$fails $1 check(s) failed"; exit 1; fi
  echo "all $1 checks passed"
}
