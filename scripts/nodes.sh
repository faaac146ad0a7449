#!/usr/bin/env bash
# Brings up a deployment of two confsfu nodes on this machine, joined through a redis-server it
# starts (docs/scale-out.md, "Nodes through Redis"): a page may join on either node; a room's
# connections are piped to the node holding it; a node killed, its rooms carry on on the other.
#
#   bash scripts/nodes.sh --secret SECRET [--ports 8081,8082] [--redis-port 6390]
#                         [--host 127.0.0.1] [--workers 1] [--rooms demo,council]
#                         [--redis-url redis://host:port/0]
#
# --secret: the join-token secret (at least 32 characters; the same for both nodes).
# --ports: the two nodes' ports; --host: the address both listen on and advertise to each other.
# --redis-url: use a running Redis instead of starting one (--redis-port is then unused).
# The nodes' settings are written to a private temporary directory (printed, with how to mint a
# token); Ctrl-C stops the nodes (SIGTERM: their meetings' snapshots stay in Redis), then Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
SECRET="" PORTS="8081,8082" REDIS_PORT=6390 HOST=127.0.0.1 WORKERS=1 ROOMS="demo" REDIS_URL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --secret) SECRET=$2; shift 2 ;;
    --ports) PORTS=$2; shift 2 ;;
    --redis-port) REDIS_PORT=$2; shift 2 ;;
    --redis-url) REDIS_URL=$2; shift 2 ;;
    --host) HOST=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --rooms) ROOMS=$2; shift 2 ;;
    *) echo "nodes.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ${#SECRET} -lt 32 ]; then
  echo "nodes.sh: --secret of at least 32 characters is required" >&2
  exit 2
fi
IFS=, read -r PORT1 PORT2 <<<"$PORTS"
CONFSFU=${CONFSFU:-.venv/bin/confsfu}
DIR=$(mktemp -d /tmp/confsfu-nodes.XXXXXX)
chmod 700 "$DIR"
PIDS=() REDIS_PID=""
stop() {  # the nodes first (they release their rooms in Redis), then Redis
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$REDIS_PID" ]; then kill -TERM "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" || true; fi
}
trap stop INT TERM EXIT

if [ -z "$REDIS_URL" ]; then
  command -v redis-server >/dev/null || { echo "nodes.sh: redis-server is not installed" >&2; exit 1; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
    >"$DIR/redis.log" 2>&1 &
  REDIS_PID=$!
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  sleep 0.5
fi

for i in 1 2; do
  port_var=PORT$i
  {
    echo "token_secret: \"$SECRET\""
    echo "host: \"$HOST\""
    echo "redis_url: \"$REDIS_URL\""
    echo "node_id: node-$i"
    echo "node_address: \"$HOST:${!port_var}\""
    echo "report_dir: \"$DIR/reports-$i\""
    echo "rooms:"
    IFS=, read -ra names <<<"$ROOMS"
    for name in "${names[@]}"; do echo "  - {name: \"$name\"}"; done
  } >"$DIR/node-$i.yaml"
  "$CONFSFU" serve --config "$DIR/node-$i.yaml" --port "${!port_var}" --workers "$WORKERS" &
  PIDS+=($!)
done
echo "nodes: http://$HOST:$PORT1/ (node-1) and http://$HOST:$PORT2/ (node-2), Redis $REDIS_URL"
echo "settings in $DIR; a token: $CONFSFU token --config $DIR/node-1.yaml --room ROOM --name NAME"
wait -n "${PIDS[@]}" || true  # until a node stops (or Ctrl-C)
