#!/usr/bin/env bash
# torchrun-style launcher: starts --nproc-per-node workers of a command on this node with the
# torchrun environment (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
# MASTER_PORT), prefixes their output with the rank, forwards SIGINT/SIGTERM, and on the first
# worker failure stops the others and exits with that worker's status.
#
#   scripts/launch.sh --nnodes N --nproc-per-node P --node-rank R --master-addr A --master-port PORT \
#       [--standalone] -- longalign train --config ...
set -uo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
nnodes=1 nproc=1 node_rank=0 addr=127.0.0.1 port=29500 standalone=0 grace=10
while [ $# -gt 0 ]; do
  case "$1" in
    --nnodes) nnodes=$2; shift 2 ;;
    --nproc-per-node|--nproc_per_node) nproc=$2; shift 2 ;;
    --node-rank|--node_rank) node_rank=$2; shift 2 ;;
    --master-addr|--master_addr) addr=$2; shift 2 ;;
    --master-port|--master_port) port=$2; shift 2 ;;
    --standalone) standalone=1; shift ;;
    --kill-grace) grace=$2; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) echo "launch.sh: unknown option $1 (the command goes after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "launch.sh: no command given after --" >&2; exit 2; }
for v in "$nnodes" "$nproc" "$node_rank" "$port"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "launch.sh: '$v' is not a non-negative integer" >&2; exit 2; }
done
[ "$node_rank" -lt "$nnodes" ] || { echo "launch.sh: --node-rank must be below --nnodes" >&2; exit 2; }
if [ "$standalone" = 1 ]; then
  nnodes=1 node_rank=0 addr=127.0.0.1
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo 29500)
fi
world=$((nnodes * nproc))
export MASTER_ADDR="$addr" MASTER_PORT="$port" WORLD_SIZE="$world" LOCAL_WORLD_SIZE="$nproc" GROUP_RANK="$node_rank"
[ -n "${OMP_NUM_THREADS:-}" ] || export OMP_NUM_THREADS=1

pids=()
for ((lr = 0; lr < nproc; lr++)); do
  r=$((node_rank * nproc + lr))
  RANK=$r LOCAL_RANK=$lr "$@" > >(sed -u "s/^/[rank $r] /") 2> >(sed -u "s/^/[rank $r] /" >&2) &
  pids+=($!)
done

stop_all() {  # TERM, then KILL after the grace period
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for ((i = 0; i < grace * 10; i++)); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
forward() { for p in "${pids[@]}"; do kill "-$1" "$p" 2>/dev/null; done; }
trap 'forward INT' INT
trap 'forward TERM' TERM

status=0
live=("${pids[@]}")
while [ "${#live[@]}" -gt 0 ]; do
  done_pid=
  wait -n -p done_pid "${live[@]}"
  rc=$?
  [ -z "${done_pid:-}" ] && continue  # woken by a forwarded signal
  rest=()
  for p in "${live[@]}"; do [ "$p" != "$done_pid" ] && rest+=("$p"); done
  live=("${rest[@]}")
  if [ "$rc" -ne 0 ]; then
    status=$rc
    echo "launch.sh: worker pid $done_pid exited with status $rc; stopping the others" >&2
    stop_all
    break
  fi
done
wait 2>/dev/null
exit "$status"
