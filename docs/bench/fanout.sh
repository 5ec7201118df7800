#!/usr/bin/env bash
# fanout.sh: closed-loop fan-out of netchat against the reference peers at
# several room sizes, with ../shared/bench/compare.sh, and the chart of the
# result (docs/bench/fanout.png, through chart.gp and gnuplot).
#
# Usage: docs/bench/fanout.sh [ROUNDS] [SIZES...]     (default: 3 rounds, 50 200 500 1000)
#
# Loopback only. Installs the peers from Debian/npm-free sources if missing
# (ncat, ngircd, gnuplot-nox; node is expected on the machine). Every server
# runs with its flood limits off; netchat with
#   --max-conns-per-ip 0 --msg-rate 0 --max-conns 20000
# as ../shared/bench/README.md asks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="$(cd "$repo/../shared" && pwd)"
rounds="${1:-3}"; shift || true
sizes=("$@"); [[ ${#sizes[@]} -gt 0 ]] || sizes=(50 200 500 1000)

need=()
command -v ncat >/dev/null || need+=(ncat)
command -v ngircd >/dev/null || need+=(ngircd)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [[ ${#need[@]} -gt 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
pkill -x ngircd 2>/dev/null || true   # the package may start a system instance

bin="$(mktemp -d /tmp/fanout.XXXXXX)"
(cd "$repo" && go build -o "$bin/netchat" ./cmd/netchat)
out="$here/fanout.tsv"
printf 'server\tclients\tdeliveries_per_sec\tdeliveries_per_server_cpu_sec\tp99_ms\tdelivery_ratio\n' >"$out"

for n in "${sizes[@]}"; do
    dir="$bin/n$n"
    (cd "$shared/bench" && ./compare.sh -k "$rounds" -o "$dir" \
        -s "netchat|9100|$bin/netchat serve -l 127.0.0.1:9100 --max-conns-per-ip 0 --msg-rate 0 --max-conns 20000 --log-level warn|" \
        -s "ngircd|9103|ngircd -n -f $shared/peers/ngircd/ngircd.conf|--proto irc" \
        -s "ncat|9102|ncat -l --chat --max-conns 20000 127.0.0.1 9102|--nick-prefix=" \
        -s "node|9101|node $shared/peers/node-chat/server.js 9101|" \
        -- --clients "$n" --senders 10 --rate 0 --duration 5s --warmup 1s --drain 3s) | tail -7
    for s in netchat ngircd ncat node; do
        python3 - "$dir" "$s" "$n" >>"$out" <<'PY'
import json, glob, statistics, sys
d, s, n = sys.argv[1:]
runs = [json.load(open(f)) for f in glob.glob(f"{d}/{s}.round*.json")]
if runs:
    med = lambda k: statistics.median(r.get(k, 0) for r in runs)
    print(f"{s}\t{n}\t{med('deliveries_per_sec'):.0f}\t{med('deliveries_per_server_cpu_sec'):.0f}\t{med('latency_p99_ms'):.2f}\t{med('delivery_ratio'):.4f}")
PY
    done
done
gnuplot -e "datafile='$out'; outfile='$here/fanout.png'" "$here/chart.gp"
echo "wrote $out and $here/fanout.png"
