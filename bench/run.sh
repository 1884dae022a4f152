#!/usr/bin/env bash
# bench/run.sh — the benchmark harness of docs/BENCHMARKS.md. It builds
# everything, loads N keys into a fresh keygate on SQLite, and prints one
# table from one run:
#   1. in-process verification (limits + quota + usage) at 1,000 and
#      1,000,000 keys: ns/op, allocs/op, dropped usage events;
#   2. HTTP POST /v1/keys/verify through keygate and through the minimal
#      reference server (bench/refserver) with wrk: requests/s, p50, p99,
#      on warm keys (the first HOT=10000 over and over) and, for keygate,
#      on cold keys (all N in turn: each request a key's first of the day);
#      then keygate at half its measured maximum: p50, p99, and the usage
#      events stored against the requests sent;
#   3. RSS with N keys loaded, and the start-up time with them.
# Usage: bench/run.sh            (N=1000000 keys, 15 s per wrk run)
#        N=100000 DURATION=5 bench/run.sh
#        KEEP_DB=/tmp/1m.db bench/run.sh   (keeps the loaded SQLite file, for
#                                          KEYGATE_BENCH_DB=/tmp/1m.db go test -bench BenchmarkLoad ./engine)
# Everything listens on 127.0.0.1 only and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
DURATION=${DURATION:-15}
CONNS=${CONNS:-32}
KG_ADDR=127.0.0.1:18080
REF_ADDR=127.0.0.1:18090

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need jq jq

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  if [ -n "${KEEP_DB:-}" ] && [ -f "$work/kg.db" ]; then cp "$work/kg.db" "$KEEP_DB" && echo "kept the database in $KEEP_DB" >&2; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building into $work" >&2
go build -o "$work/keygate" ./cmd/keygate
go build -o "$work/keygate-load" ./cmd/keygate-load
go build -o "$work/refserver" ./bench/refserver
go build -o "$work/genkeys" ./bench/genkeys

echo "== 1. in-process verification" >&2
inproc=$(go test -run '^$' -bench 'BenchmarkVerifyScale' -benchmem -benchtime=2s ./engine | grep '^BenchmarkVerifyScale')

wait_ready() { # wait_ready URL: seconds until it answers 200
  local start=$(date +%s.%N)
  for _ in $(seq 600); do
    if curl -sf -o /dev/null "$1"; then echo "$(date +%s.%N) - $start" | bc; return 0; fi
    sleep 0.05
  done
  echo "no answer from $1" >&2; return 1
}
start_keygate() {
  "$work/keygate" serve --addr "$KG_ADDR" --db "$work/kg.db" --root-key-file "$work/root.key" \
    --log-level warn >>"$work/keygate.log" 2>&1 &
  kg_pid=$!
  pids+=("$kg_pid")
}
stop_keygate() { kill -TERM "$kg_pid"; wait "$kg_pid" || true; }

echo "== 2. loading $N keys" >&2
start_keygate
wait_ready "http://$KG_ADDR/readyz" >/dev/null
export KEYGATE_URL="http://$KG_ADDR" KEYGATE_ROOT_KEY=$(cat "$work/root.key")
"$work/keygate" tiers create --name bench --quota 1000000000000 --rate 1000000 --burst 10000000 >/dev/null
acct=$("$work/keygate" accounts create --name Bench --email bench@example.com --tier bench --json | jq -r .id)
"$work/genkeys" -n "$N" -account "$acct" -tier bench -import "$work/import.jsonl" -plain "$work/keys.txt"
import_s=$( { /usr/bin/time -f %e "$work/keygate" import "$work/import.jsonl" >/dev/null 2>"$work/import.err"; } 2>&1 || true)
tail -1 "$work/import.err" | grep -Eq '^[0-9.]+$' && import_s=$(tail -1 "$work/import.err")
stop_keygate

echo "== 3. start-up and RSS with $N keys" >&2
start_keygate
startup_s=$(wait_ready "http://$KG_ADDR/readyz")
sleep 1
rss_mib=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$kg_pid/status")
"$work/refserver" -addr "$REF_ADDR" -keys "$work/import.jsonl" >"$work/ref.log" 2>&1 &
pids+=("$!")
wait_ready "http://$REF_ADDR/" >/dev/null 2>&1 || true # 404 until ready; curl -f fails, so poll the port instead
for _ in $(seq 600); do curl -s -o /dev/null "http://$REF_ADDR/" && break; sleep 0.1; done

check=$(curl -s -X POST "http://$KG_ADDR/v1/keys/verify" -H "Authorization: Bearer $KEYGATE_ROOT_KEY" \
  -H 'Content-Type: application/json' -d "{\"key\":\"$(head -1 "$work/keys.txt")\"}" | jq -r .code)
[ "$check" = VALID ] || { echo "a generated key does not verify: $check" >&2; exit 1; }

# Two kinds of traffic. Warm: the first HOT keys over and over, as an
# API's clients call it all day. Cold: every key in turn, each request a
# key's first of the day, which waits for its quota reservation to be on
# disk (README, "Limits and crashes").
HOT=${HOT:-10000}
head -n "$HOT" "$work/keys.txt" >"$work/hot.txt"
wrkrun() { # wrkrun URL ROOTKEY KEYSFILE → RESULT line
  KEYS_FILE="$3" ROOT_KEY="$2" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s bench/verify.lua "$1" | grep '^RESULT'
}
echo "== 4. HTTP verify, $CONNS connections, ${DURATION}s each, alternating" >&2
ref1=$(wrkrun "http://$REF_ADDR/v1/keys/verify" "" "$work/hot.txt")
kg1=$(wrkrun "http://$KG_ADDR/v1/keys/verify" "$KEYGATE_ROOT_KEY" "$work/hot.txt")
ref2=$(wrkrun "http://$REF_ADDR/v1/keys/verify" "" "$work/hot.txt")
kg2=$(wrkrun "http://$KG_ADDR/v1/keys/verify" "$KEYGATE_ROOT_KEY" "$work/hot.txt")
kgcold=$(wrkrun "http://$KG_ADDR/v1/keys/verify" "$KEYGATE_ROOT_KEY" "$work/keys.txt")
field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }
best() { awk -v a="$(field "$1" "$2")" -v b="$(field "$1" "$3")" 'BEGIN{print (a>b)?a:b}'; }
ref_rps=$(best rps "$ref1" "$ref2"); kg_rps=$(best rps "$kg1" "$kg2")
half=$(awk -v r="$kg_rps" 'BEGIN{printf "%d", r/2}')
echo "== 5. keygate at half its maximum: $half/s for ${DURATION}s" >&2
"$work/keygate-load" -verify -url "http://$KG_ADDR/v1/keys/verify" -keys "$work/hot.txt" \
  -rate "$half" -duration "${DURATION}s" -workers 64 -json >"$work/half.json"

# Every verification with a key is a usage event: after a graceful stop
# (which flushes the buffer) the store must hold one per request served.
rss_load_mib=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$kg_pid/status")
rss_peak_mib=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$kg_pid/status")
served=$(curl -s "http://$KG_ADDR/metrics" | awk '/^keygate_verifications_total/ {s+=$2} END {printf "%d", s}')
dropped=$(curl -s "http://$KG_ADDR/metrics" | awk '/^keygate_usage_dropped_total/ {printf "%d", $2}')
stop_keygate
start_keygate
wait_ready "http://$KG_ADDR/readyz" >/dev/null
events=$(curl -s "http://$KG_ADDR/v1/usage?account_id=$acct&granularity=day&from=$(date -u -d '-1 day' +%Y-%m-%dT00:00:00Z)" \
  -H "Authorization: Bearer $KEYGATE_ROOT_KEY" | jq '[.data[]?.total // 0] | add // 0')
stop_keygate

cat <<TABLE

keygate benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | cut -d' ' -f3), N=$N keys

1. In-process verification (limits + quota + usage recorded)
$(awk '{printf "   %-40s", $1; for (i=3;i<NF;i++) if ($(i+1) ~ /^(ns\/op|allocs\/op|dropped|heapB\/key)$/) printf "  %s %s", $i, $(i+1); print ""}' <<<"$inproc")

2. HTTP POST /v1/keys/verify, wrk -t1 -c$CONNS, ${DURATION}s per run (two runs each, alternating), warm: the first $HOT keys in turn
   reference server   run 1: $ref1
                      run 2: $ref2
   keygate            run 1: $kg1
                      run 2: $kg2
   keygate / reference (best of each): $(awk -v a="$kg_rps" -v b="$ref_rps" 'BEGIN{printf "%.2f", a/b}')
   keygate, cold keys (all $N in turn, each request a key's first of the day): $kgcold
   keygate at $half/s (half of its maximum), keygate-load: $(jq -c '{sent,errors,achieved_rate:(.achieved_rate|floor),statuses,latency_ms}' "$work/half.json")
   verifications served (metrics): $served; usage events stored after a graceful restart: $events; dropped: $dropped

3. Memory and start-up with $N keys (SQLite)
   import: ${import_s}s   start-up to /readyz: ${startup_s}s
   RSS after start: ${rss_mib} MiB   after the load runs: ${rss_load_mib} MiB   peak: ${rss_peak_mib} MiB
TABLE
