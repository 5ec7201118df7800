#!/usr/bin/env python3
"""stuckmem.py: memory per stuck client (issue 10).

  docs/bench/stuckmem.py NETCHAT [STUCK] [--pprof-on-metrics]

STUCK clients (default 60) join and never read (4 KiB receive buffers);
10 others post 4,000-byte lines until every stuck client has been cut off
as a slow consumer (--send-queue 1MiB, the default). Prints the server's
RSS before, its peak while the stuck clients' queues fill, the growth per
stuck client, and, after everybody has left and two forced garbage
collections, the heap in use and the RSS: what the output buffer pool
keeps. --pprof-on-metrics: the binary serves /debug/pprof on --metrics
(the previous main) instead of --pprof.

Loopback only.
"""
import json, subprocess, sys, threading, time, urllib.request

from benchkit import free_port, join, metric, wait_port

def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) * 1024
    return 0

def main():
    binary = sys.argv[1]
    stuck_n = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 60
    old = "--pprof-on-metrics" in sys.argv
    port, mport, pport = free_port(), free_port(), free_port()
    args = [binary, "serve", "-l", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{mport}",
            "--max-conns-per-ip", "0", "--msg-rate", "0", "--history", "0", "--log-level", "error"]
    if not old:
        args += ["--pprof", f"127.0.0.1:{pport}"]
    else:
        pport = mport
    p = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        stuck = [join(port, f"stuck{i}", rcvbuf=4096)[0] for i in range(stuck_n)]
        posters = [join(port, f"poster{i}")[0] for i in range(10)]
        # Posters read what they get, so that only the stuck clients lag.
        stop = threading.Event()
        def drain(s):
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    if not s.recv(1 << 16):
                        return
                except OSError:
                    pass
        for s in posters:
            threading.Thread(target=drain, args=(s,), daemon=True).start()
        time.sleep(0.5)
        r0 = rss(p.pid)
        peak = r0
        line = b"z" * 4000 + b"\n"
        t0 = time.time()
        def post(s):
            while not stop.is_set():
                try:
                    s.sendall(line * 5)
                except OSError:
                    return
                time.sleep(0.01)
        for s in posters:
            threading.Thread(target=post, args=(s,), daemon=True).start()
        while time.time() - t0 < 60:
            peak = max(peak, rss(p.pid))
            if metric(mport, "netchat_users_online") <= 10:
                break
            time.sleep(0.05)
        stop.set()
        took = time.time() - t0
        online = metric(mport, "netchat_users_online")
        for s in stuck + posters:
            s.close()
        for _ in range(100):
            if metric(mport, "netchat_connections") == 0:
                break
            time.sleep(0.1)
        time.sleep(1)
        for _ in range(2):
            urllib.request.urlopen(f"http://127.0.0.1:{pport}/debug/pprof/heap?gc=1", timeout=10).read()
        heap = metric(mport, "go_memstats_heap_inuse_bytes")
        print(json.dumps({
            "binary": binary, "stuck": stuck_n, "seconds_to_cut_all_off": round(took, 1),
            "online_at_end": online,
            "rss_before_mib": round(r0 / 2**20, 1), "rss_peak_mib": round(peak / 2**20, 1),
            "growth_per_stuck_mib": round((peak - r0) / stuck_n / 2**20, 2),
            "after_leaving_heap_inuse_mib": round(heap / 2**20, 1),
            "after_leaving_rss_mib": round(rss(p.pid) / 2**20, 1),
        }))
    finally:
        p.terminate(); p.wait()

main()
