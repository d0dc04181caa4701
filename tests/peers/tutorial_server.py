"""The tutorial's Hello server, as written there, with three changes so a test can drive it:
the port comes from the command line (0 picks a free one), the real address is printed as
"Listening on HOST:PORT" once bound, and the per-message sleep is an argument (the tutorial
sleeps 1 s; the benchmark anchor sleeps 0)."""

import socket
import sys
import threading
import time

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 9999
delay = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(5)
print("Listening on %s:%s" % s.getsockname(), file=sys.stderr, flush=True)
print("Waiting for connection...", file=sys.stderr, flush=True)


def tcplink(sock, addr):
    print("Accept new connection from %s:%s..." % addr, file=sys.stderr, flush=True)
    sock.send(b"Welcome!")
    while True:
        data = sock.recv(1024)
        time.sleep(delay)
        if not data or data.decode("utf-8") == "exit":
            break
        sock.send(("Hello, %s!" % data.decode("utf-8")).encode("utf-8"))
    sock.close()
    print("Connection from %s:%s closed." % addr, file=sys.stderr, flush=True)


while True:
    sock, addr = s.accept()
    t = threading.Thread(target=tcplink, args=(sock, addr), daemon=True)
    t.start()
