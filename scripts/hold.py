#!/usr/bin/env python3
"""Hold N idle connections open to a Hello server, then check that every one still answers.

    hold.py PORT N [--host 127.0.0.1] [--hold SECONDS] [--ready-file FILE]

Opens N connections one after the other (each greeting read before the next connect, so a
small listen backlog never overflows), says "holding N" on stdout and, if asked, writes its
own PID to READY_FILE (the process to send SIGUSR1 to, even when run under `timeout`). Then it waits: for SECONDS (default: forever), for a line on stdin, or for
SIGUSR1/SIGTERM/SIGINT, whichever comes first. Afterwards it sends one raw message on every
connection, expects exactly "Hello, <msg>!" back, and prints "answered A/N". Exit 0 only when
all N answered.
"""

import argparse
import os
import resource
import select
import signal
import socket
import sys
import time

GREETING = b"Welcome!"
TIMEOUT = 10.0


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit("hold.py: the descriptor limit (%d) is below %d" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def read_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def connect(host, port, attempts=8):
    delay = 0.01
    for attempt in range(attempts):
        try:
            sock = socket.create_connection((host, port), timeout=TIMEOUT)
            if read_exact(sock, len(GREETING)) != GREETING:
                raise ConnectionError("wrong greeting")
            return sock
        except (ConnectionError, socket.timeout, OSError):
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


STOP = {"now": False}


def on_signal(_signum, _frame):
    STOP["now"] = True


def wait(seconds):
    deadline = None if seconds is None else time.monotonic() + seconds
    stdin_open = not sys.stdin.closed and not sys.stdin.isatty()
    while not STOP["now"]:
        left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
        if left <= 0:
            return
        try:
            if stdin_open:
                ready, _, _ = select.select([sys.stdin], [], [], left)
                if ready:
                    sys.stdin.readline()
                    return
            else:
                time.sleep(left)
        except InterruptedError:
            pass


def answers(sock, i):
    msg = ("hold-%d" % i).encode()
    try:
        sock.sendall(msg)
        expected = b"Hello, " + msg + b"!"
        return read_exact(sock, len(expected)) == expected
    except (ConnectionError, socket.timeout, OSError):
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("n", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--hold", type=float, default=None, help="seconds (default: forever)")
    parser.add_argument("--ready-file")
    args = parser.parse_args()
    raise_fd_limit(args.n)
    # Installed before anything is held: a signal that comes early still ends the wait.
    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    socks = []
    try:
        for _ in range(args.n):
            socks.append(connect(args.host, args.port))
    except (ConnectionError, socket.timeout, OSError) as err:
        print("hold.py: opened %d/%d, then: %s" % (len(socks), args.n, err), file=sys.stderr)
        return 1
    print("holding %d" % len(socks), flush=True)
    if args.ready_file:
        # Written whole, then renamed: whoever sees the file sees the PID.
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.ready_file + ".tmp", args.ready_file)
    wait(args.hold)
    answered = sum(answers(s, i) for i, s in enumerate(socks))
    print("answered %d/%d" % (answered, args.n), flush=True)
    for s in socks:
        try:
            s.sendall(b"exit")
        except OSError:
            pass
        s.close()
    return 0 if answered == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
