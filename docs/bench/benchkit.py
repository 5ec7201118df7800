"""benchkit: what the Python scripts of docs/bench share. Loopback only."""
import re, socket, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port):
    """Waits (at most 5 s) until a server listens on 127.0.0.1:port."""
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)

def join(port, nick, rcvbuf=None):
    """Joins the chat on 127.0.0.1:port as nick; returns the socket and a
    binary file reading it, after the welcome line."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    f = s.makefile("rb")
    f.readline()  # greeting
    s.sendall((nick + "\n").encode())
    while not f.readline().startswith(b"* Welcome"):
        pass
    return s, f

def metric(mport, name):
    """The value of an unlabelled metric on 127.0.0.1:mport, or None."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    m = re.search(r"^" + name + r" (\S+)$", body, re.M)
    return float(m.group(1)) if m else None
