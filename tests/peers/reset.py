"""Connects, reads the greeting, sends one message, then aborts the connection with a TCP
reset (SO_LINGER 0), as a crashed or hostile client would."""

import socket
import struct
import sys

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.recv(1024)
s.send(b"half a conversation")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
