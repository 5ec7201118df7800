#!/usr/bin/env bash
# bigroom.sh: open-loop fan-out in big rooms (issue 14): p99 latency and
# deliveries per server CPU-second against room size, at 10 senders x R
# lines/s each, for netchat built from this tree ("after"), netchat built
# from an earlier revision ("before") and ngIRCd where it joins the room in
# reasonable time; then the chart docs/bench/bigroom.png.
#
# Usage: docs/bench/bigroom.sh [ROUNDS] [BEFORE_REV]
#   SIZES="50 500 2000 5000 19000" RATES="1 5 10" NGIRCD_MAX=2000 (environment)
#
# Loopback only; every server with its flood limits off, netchat with
#   --max-conns-per-ip 0 --msg-rate 0 --max-conns 20000 --log-level warn
# Medians over ROUNDS rounds (compare.sh alternates the order per round).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="$(cd "$repo/../shared" && pwd)"
rounds="${1:-1}"
before_rev="${2:-d089dc1}"
read -r -a sizes <<<"${SIZES:-50 500 2000 5000 19000}"
read -r -a rates <<<"${RATES:-1 5 10}"
ngircd_max="${NGIRCD_MAX:-2000}"

need=()
command -v ngircd >/dev/null || need+=(ngircd)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [[ ${#need[@]} -gt 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
pkill -x ngircd 2>/dev/null || true # the package may start a system instance

bin="$(mktemp -d /tmp/bigroom.XXXXXX)"
(cd "$repo" && go build -o "$bin/after" ./cmd/netchat)
git -C "$repo" worktree add -q --detach "$bin/src" "$before_rev"
(cd "$bin/src" && go build -o "$bin/before" ./cmd/netchat)
git -C "$repo" worktree remove --force "$bin/src"

flags="--max-conns-per-ip 0 --msg-rate 0 --max-conns 20000 --log-level warn"
out="$here/bigroom.tsv"
printf 'server\tclients\trate\tdeliveries_per_sec\tdeliveries_per_server_cpu_sec\tp50_ms\tp99_ms\tdelivery_ratio\tclient_cpu_cores\tserver_cpu_cores\n' >"$out"

for rate in "${rates[@]}"; do
    for n in "${sizes[@]}"; do
        dir="$bin/r$rate-n$n"
        servers=(
            -s "after|9130|$bin/after serve -l 127.0.0.1:9130 $flags|"
            -s "before|9131|$bin/before serve -l 127.0.0.1:9131 $flags|"
        )
        if ((n <= ngircd_max)); then
            servers+=(-s "ngircd|9103|ngircd -n -f $shared/peers/ngircd/ngircd.conf|--proto irc")
        fi
        # Many clients: spread their source addresses (ephemeral ports),
        # dial faster, and wait longer for everybody to be ready.
        extra=(--source-ips 8 --dial-concurrency 32 --ready-timeout 3m)
        (cd "$shared/bench" && ./compare.sh -k "$rounds" -o "$dir" "${servers[@]}" \
            -- --clients "$n" --senders 10 --rate "$rate" --duration 10s --warmup 2s --drain 5s "${extra[@]}") | tail -6
        for s in after before ngircd; do
            python3 - "$dir" "$s" "$n" "$rate" >>"$out" <<'PY'
import json, glob, statistics, sys
d, s, n, rate = sys.argv[1:]
runs = [json.load(open(f)) for f in glob.glob(f"{d}/{s}.round*.json")]
if runs:
    med = lambda k: statistics.median(r.get(k, 0) for r in runs)
    print(f"{s}\t{n}\t{rate}\t{med('deliveries_per_sec'):.0f}\t{med('deliveries_per_server_cpu_sec'):.0f}\t"
          f"{med('latency_p50_ms'):.2f}\t{med('latency_p99_ms'):.2f}\t{med('delivery_ratio'):.4f}\t"
          f"{med('client_cpu_cores'):.2f}\t{med('server_cpu_cores'):.2f}")
PY
        done
    done
done
gnuplot -e "datafile='$out'; outfile='$here/bigroom.png'" "$here/bigroom.gp"
echo "wrote $out and $here/bigroom.png (runs in $bin)"
