#!/usr/bin/env bash
# Cluster benchmarks (docs/BENCHMARKS.md, "Cluster"): one netchat node
# against two nodes on one nats-server, alternating, ROUNDS rounds, fresh
# processes every run. Loopback only.
#
#   docs/bench/cluster.sh fanout|latency ROUNDS
#   docs/bench/cluster.sh connhold ROUNDS
#
# Needs: NETCHAT (a netchat binary), BENCH (dir with chatload, connhold),
# nats-server in PATH (Debian's, or any 2.9+).
set -euo pipefail
mode=${1:?fanout, latency or connhold}
rounds=${2:-3}
NETCHAT=${NETCHAT:-/tmp/nc-bench/netchat}
BENCH=${BENCH:-/tmp/benchbin}
NATS=${NATS:-$(PATH="$PATH:/usr/sbin" command -v nats-server)}
out=${OUT:-/tmp/nc-bench/results}
mkdir -p "$out"
flags=(--max-conns-per-ip 0 --msg-rate 0 --max-conns 20000 --log-level warn)
pids=()
# Stops the nodes first, nats-server last (so the nodes leave cleanly).
cleanup() {
  local i
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

waitport() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; return 1; }

single() { # starts one node on 9510; sets ADDRS, PIDS
  "$NETCHAT" serve -l 127.0.0.1:9510 "${flags[@]}" 2>>"$out/single.log" & pids+=($!)
  waitport 9510; ADDRS=127.0.0.1:9510; PIDS=${pids[-1]}
}

cluster() { # starts nats-server and two nodes on 9511, 9512; sets ADDRS, PIDS
  local sd; sd=$(mktemp -d /tmp/nc-bench/js.XXXX)
  "$NATS" -js -sd "$sd" -a 127.0.0.1 -p 14333 >>"$out/nats.log" 2>&1 & pids+=($!); local np=$!
  waitport 14333
  "$NETCHAT" serve -l 127.0.0.1:9511 --node n1 --cluster nats://127.0.0.1:14333 --metrics 127.0.0.1:9611 "${flags[@]}" 2>>"$out/n1.log" & pids+=($!); local p1=$!
  "$NETCHAT" serve -l 127.0.0.1:9512 --node n2 --cluster nats://127.0.0.1:14333 --metrics 127.0.0.1:9612 "${flags[@]}" 2>>"$out/n2.log" & pids+=($!); local p2=$!
  waitport 9511; waitport 9512
  ADDRS=127.0.0.1:9511,127.0.0.1:9512; PIDS=$p1,$p2,$np
}

for r in $(seq "$rounds"); do
  for kind in single cluster; do
    $kind
    case $mode in
      fanout)  "$BENCH/chatload" --addr "$ADDRS" --server-pid "$PIDS" --clients 500 --senders 10 --rate 0 \
                 --duration 5s --warmup 1s --drain 3s --json > "$out/fanout-$kind-$r.json" ;;
      latency) "$BENCH/chatload" --addr "$ADDRS" --server-pid "$PIDS" --clients 500 --senders 10 --rate 10 \
                 --duration 5s --warmup 1s --drain 3s --json > "$out/latency-$kind-$r.json" ;;
      connhold) "$BENCH/connhold" --addr "$ADDRS" --server-pid "$PIDS" --conns 19000 --hold 3s \
                 --json > "$out/connhold-$kind-$r.json"
                if [ "$kind" = cluster ]; then
                  curl -s 127.0.0.1:9611/metrics | grep '^netchat_cluster_claim_seconds' > "$out/claims-n1-$r.txt"
                  curl -s 127.0.0.1:9612/metrics | grep '^netchat_cluster_claim_seconds' > "$out/claims-n2-$r.txt"
                fi ;;
    esac
    cleanup
  done
done
echo "results in $out"
