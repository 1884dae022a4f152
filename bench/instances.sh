#!/usr/bin/env bash
# bench/instances.sh — docs/BENCHMARKS.md, "Several instances": verify
# throughput and latency of one embedded keygate (SQLite) against two
# instances sharing PostgreSQL and Redis, in one run, with the same N keys.
#   - embedded: wrk -c$CONNS against the one instance;
#   - two instances: two wrk, -c$((CONNS/2)) each, at the same time, one
#     per instance (requests/s summed, p50/p99 the worse of the two).
# Every verification counts against the key's limits: in Redis for the
# two instances, in memory for the embedded one.
# Usage: bench/instances.sh                        (N=10000, 10 s per run)
#        N=100000 DURATION=20 bench/instances.sh
# Needs PostgreSQL and Redis at KEYGATE_TEST_POSTGRES and KEYGATE_TEST_REDIS
# (the tests' defaults below); it works in a schema and a Redis key prefix
# of its own and removes both. Everything listens on 127.0.0.1 and stops by
# itself.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
PG=${KEYGATE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
REDIS=${KEYGATE_TEST_REDIS:-redis://127.0.0.1:6379/0}

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need jq jq
need psql postgresql-client
need redis-cli redis-tools

work=$(mktemp -d)
tag=kgbench_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
prefix="$tag:"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$PG" -c "DROP SCHEMA IF EXISTS $tag CASCADE" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$REDIS" del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building into $work" >&2
go build -o "$work/keygate" ./cmd/keygate
go build -o "$work/genkeys" ./bench/genkeys

wait_ready() {
  for _ in $(seq 600); do curl -sf -o /dev/null "$1/readyz" && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; return 1
}
serve() { # serve ADDR LOG ARGS… → starts keygate serve, pid in $last
  local addr=$1 log=$2; shift 2
  "$work/keygate" serve --addr "$addr" --log-level warn --failure-limit -1 "$@" >>"$log" 2>&1 &
  last=$!
  pids+=("$last")
  wait_ready "http://$addr"
}
stop() { kill -TERM "$1"; wait "$1" || true; }

# load URL ROOT: a tier without practical limits, an account, N keys.
load() {
  export KEYGATE_URL=$1 KEYGATE_ROOT_KEY=$2
  "$work/keygate" tiers create --name bench --quota 1000000000000 --rate 1000000 --burst 10000000 >/dev/null
  local acct
  acct=$("$work/keygate" accounts create --name Bench --email bench@example.com --tier bench --json | jq -r .id)
  "$work/genkeys" -n "$N" -account "$acct" -tier bench -import "$work/import.jsonl" -plain "$work/keys.txt"
  "$work/keygate" import "$work/import.jsonl" >/dev/null 2>&1
}

wrkrun() { # wrkrun URL ROOT CONNS → RESULT line
  KEYS_FILE="$work/keys.txt" ROOT_KEY="$2" wrk -t1 -c"$3" -d"${DURATION}s" --latency -s bench/verify.lua "$1" | grep '^RESULT'
}
field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }

echo "== embedded: one instance on SQLite, $N keys" >&2
serve 127.0.0.1:18100 "$work/embedded.log" --db "$work/kg.db" --root-key-file "$work/root1.key"
emb=$last
load http://127.0.0.1:18100 "$(cat "$work/root1.key")"
embedded=$(wrkrun http://127.0.0.1:18100/v1/keys/verify "$(cat "$work/root1.key")" "$CONNS")
stop "$emb"

echo "== two instances on PostgreSQL (schema $tag) and Redis (prefix $prefix), $N keys" >&2
psql -q "$PG" -c "CREATE SCHEMA $tag" >/dev/null
db="$PG&search_path=$tag"
serve 127.0.0.1:18101 "$work/a.log" --db "$db" --redis "$REDIS" --redis-prefix "$prefix" --root-key-file "$work/root2.key"
serve 127.0.0.1:18102 "$work/b.log" --db "$db" --redis "$REDIS" --redis-prefix "$prefix"
root2=$(cat "$work/root2.key")
load http://127.0.0.1:18101 "$root2"
# The second instance learnt of the imported keys through the feed.
last_key=$(tail -1 "$work/keys.txt")
for _ in $(seq 200); do
  code=$(curl -s -X POST http://127.0.0.1:18102/v1/keys/verify -H "Authorization: Bearer $root2" \
    -H 'Content-Type: application/json' -d "{\"key\":\"$last_key\"}" | jq -r .code)
  [ "$code" = VALID ] && break
  sleep 0.05
done
[ "$code" = VALID ] || { echo "the second instance does not know the imported keys: $code" >&2; exit 1; }
wrkrun http://127.0.0.1:18101/v1/keys/verify "$root2" $((CONNS / 2)) >"$work/wa" &
wa=$!
wrkrun http://127.0.0.1:18102/v1/keys/verify "$root2" $((CONNS / 2)) >"$work/wb"
wait "$wa"
ra=$(cat "$work/wa"); rb=$(cat "$work/wb")
local_decisions=$(curl -s http://127.0.0.1:18101/metrics http://127.0.0.1:18102/metrics | awk '/^keygate_limiter_local_decisions_total/ {s+=$2} END {printf "%d", s}')

sum_rps=$(awk -v a="$(field rps "$ra")" -v b="$(field rps "$rb")" 'BEGIN{printf "%.0f", a+b}')
worse() { awk -v a="$(field "$1" "$ra")" -v b="$(field "$1" "$rb")" 'BEGIN{print (a>b)?a:b}'; }

cat <<TABLE

keygate instances benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | cut -d' ' -f3), N=$N keys, ${DURATION}s per run
POST /v1/keys/verify, every request counted against its key's limits

   embedded (SQLite, quota.Local), wrk -c$CONNS:   $embedded
   two instances (PostgreSQL + Redis), wrk -c$((CONNS / 2)) each, together:
     instance A: $ra
     instance B: $rb
     together:   rps=$sum_rps p50_ms(worse)=$(worse p50_ms) p99_ms(worse)=$(worse p99_ms)   requests decided without Redis: $local_decisions
   two instances / embedded (requests/s): $(awk -v a="$sum_rps" -v b="$(field rps "$embedded")" 'BEGIN{printf "%.2f", a/b}')
TABLE
