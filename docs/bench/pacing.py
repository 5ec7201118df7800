#!/usr/bin/env python3
"""pacing.py: issue 13's slow-reader scenarios against a netchat binary.

  docs/bench/pacing.py NETCHAT burst   [SEND_QUEUE] [extra serve flags...]
  docs/bench/pacing.py NETCHAT quiet   [extra serve flags...]

burst: one client that never reads, one that reads continuously (a plain
loop over recv), and a sender that pastes 5,000 lines of 3 KB as fast as
it can, with --msg-rate 100000 --msg-burst 100000. Prints whether the
reader kept its connection and got every line, when the non-reader was
dropped (and why), and the server's stall count.

quiet: a client that stops reading in a quiet room (--send-queue 64MiB, so
that only the write timeout can drop it): 3,000 lines of 4 KB fill the
kernel buffers (its receive buffer is 4 KiB), then nothing more
is sent. Prints when (if ever, within 20 s) the server drops it.

Loopback only; the server runs on 127.0.0.1 with a port of its own.
"""
import json, subprocess, sys, threading, time

from benchkit import free_port, join, metric, wait_port

def start(binary, flags):
    port, mport = free_port(), free_port()
    p = subprocess.Popen([binary, "serve", "-l", f"127.0.0.1:{port}", "--log-format", "json",
                          "--metrics", f"127.0.0.1:{mport}", "--max-conns-per-ip", "0",
                          "--history", "0"] + flags, stderr=subprocess.PIPE, text=True)
    logs = []
    threading.Thread(target=lambda: [logs.append(l) for l in p.stderr], daemon=True).start()
    wait_port(port)
    return p, port, mport, logs

def drops(logs, t0):
    out = []
    for l in list(logs):
        try:
            r = json.loads(l)
        except ValueError:
            continue
        if r.get("msg") == "slow consumer disconnected":
            out.append((r.get("remote"), r.get("cause", "queue full")))
    return out

def burst(binary, queue, flags):
    p, port, mport, logs = start(binary, ["--send-queue", queue, "--msg-rate", "100000", "--msg-burst", "100000"] + flags)
    try:
        stuck, _ = join(port, "stuck", rcvbuf=4096)
        reader, rf = join(port, "reader")
        sender, _ = join(port, "sender")
        got, lost = [0], [None]
        def read():
            buf, want = b"", 5000
            reader.settimeout(30)
            try:
                while got[0] < want:
                    b = reader.recv(65536)
                    if not b:
                        lost[0] = "closed"; return
                    buf += b
                    lines = buf.split(b"\r\n"); buf = lines.pop()
                    got[0] += sum(1 for l in lines if l.startswith(b"sender: "))
            except OSError as e:
                lost[0] = str(e)
        th = threading.Thread(target=read); th.start()
        body = b"x" * 3000
        t0 = time.time()
        sender.sendall(b"".join(b"%d %s\n" % (i, body) for i in range(5000)))
        sent = time.time() - t0
        th.join(40)
        stuck_addr = "127.0.0.1:%d" % stuck.getsockname()[1]
        reader_addr = "127.0.0.1:%d" % reader.getsockname()[1]
        d = drops(logs, t0)
        print(json.dumps({
            "binary": binary, "send_queue": queue, "flags": " ".join(flags),
            "reader_lines": got[0], "reader_lost": lost[0],
            "reader_dropped": any(a == reader_addr for a, _ in d),
            "stuck_dropped": [c for a, c in d if a == stuck_addr],
            "paste_seconds": round(sent, 3),
            "stalls": metric(mport, "netchat_stalls_total"),
        }))
    finally:
        p.terminate(); p.wait()

def quiet(binary, flags):
    # A queue limit far above what is sent: only the write timeout can
    # drop the client.
    p, port, mport, logs = start(binary, ["--msg-rate", "0", "--send-queue", "64MiB"] + flags)
    try:
        stuck, _ = join(port, "stuck", rcvbuf=4096)
        sender, sf = join(port, "sender")
        body = b"y" * 4000
        sender.sendall(b"".join(b"%d %s\n" % (i, body) for i in range(3000)))
        t0 = time.time()
        dropped = None
        while time.time() - t0 < 20:
            if metric(mport, "netchat_users_online") == 1.0:
                dropped = time.time() - t0; break
            time.sleep(0.1)
        print(json.dumps({"binary": binary, "flags": " ".join(flags),
                          "dropped_after_s": None if dropped is None else round(dropped, 1),
                          "causes": [c for _, c in drops(logs, t0)]}))
    finally:
        p.terminate(); p.wait()

if __name__ == "__main__":
    binary, mode = sys.argv[1], sys.argv[2]
    if mode == "burst":
        queue = sys.argv[3] if len(sys.argv) > 3 else "64KiB"
        burst(binary, queue, sys.argv[4:])
    else:
        quiet(binary, sys.argv[3:])
