#!/usr/bin/env bash
# bench/gateway.sh — gateway benchmark of docs/BENCHMARKS.md: requests/s and
# p99 with wrk against one upstream, in one run: direct, through nginx
# proxy_pass (no check), through a minimal Go reverse proxy that checks the
# SHA-256 of X-API-Key (bench/minproxy), and through keygate's gateway.
# Usage: bench/gateway.sh   (DURATION=10 CONNS=32 THREADS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}; CONNS=${CONNS:-32}; THREADS=${THREADS:-1}
need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need nginx nginx-light
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/keygate" ./cmd/keygate
go build -o "$work/minproxy" ./bench/minproxy
go build -o "$work/upstream" ./bench/upstream
"$work/upstream" -addr 127.0.0.1:18092 & pids+=($!)
"$work/keygate" serve --addr 127.0.0.1:18093 --db "$work/kg.db" --root-key-file "$work/root" \
  --upstream http://127.0.0.1:18092 --log-level warn >"$work/kg.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:18093/healthz >/dev/null && break; sleep 0.1; done
ROOT=$(cat "$work/root")
ACC=$(curl -sf -X POST http://127.0.0.1:18093/v1/accounts -H "Authorization: Bearer $ROOT" -H 'Content-Type: application/json' \
  -d '{"name":"bench","email":"bench@example.com"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
KEY=$(curl -sf -X POST http://127.0.0.1:18093/v1/keys -H "Authorization: Bearer $ROOT" -H 'Content-Type: application/json' \
  -d "{\"account_id\":\"$ACC\",\"quota_per_day\":1000000000,\"rate_per_second\":1000000,\"burst\":1000000}" | sed 's/.*"key":"\([^"]*\)".*/\1/')
"$work/minproxy" -addr 127.0.0.1:18091 -upstream http://127.0.0.1:18092 -key "$KEY" 2>"$work/minproxy.log" & pids+=($!)
cat >"$work/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; upstream up { server 127.0.0.1:18092; keepalive 64; }
  server { listen 127.0.0.1:18094; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGX
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
sleep 1
run() { # name url
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "X-API-Key: $KEY" "$2")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $4}')
  printf "%-22s %10s req/s   p99 %8s   non-2xx %s\n" "$1" "$rps" "$p99" "${non2xx:-0}"
}
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, $(nproc) cores"
run direct      http://127.0.0.1:18092/weather
run nginx       http://127.0.0.1:18094/weather
run minproxy    http://127.0.0.1:18091/weather
run keygate     http://127.0.0.1:18093/weather
