"""python3's http.server behind its ssl module: an HTTPS server nobody here wrote, for the
fetch tests.

It serves the files of --directory over TLS on a port the system picks, and tells on stdout
(one line per event, flushed) what a test needs to see:
  Serving HTTPS on HOST port PORT   once it listens (the test waits for this line)
  SNI NAME                          the name a client asked for, "SNI -" when it sent none
  HANDSHAKE-FAILED REASON           a handshake that did not complete
  REQUEST METHOD PATH               each request, then one "HEADER Name: value" line per field
                                    and "END" (all before the response is sent)
--redirect PATH=URL answers PATH with a 302 to URL. --tls12 caps the protocol at TLS 1.2.
"""

import argparse
import http.server
import socket
import ssl
import sys


def say(line):
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--tls12", action="store_true")
    parser.add_argument("--redirect", action="append", default=[])
    args = parser.parse_args()
    redirects = dict(item.split("=", 1) for item in args.redirect)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["http/1.1"])
    if args.tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2

    def sni(sock, name, ctx):
        say("SNI " + (name or "-"))

    context.sni_callback = sni

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=args.directory, **kw)

        def do_GET(self):
            say("REQUEST GET " + self.path)
            for name, value in self.headers.items():
                say("HEADER %s: %s" % (name, value))
            say("END")
            if self.path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET

        def finish_request(self, request, client_address):
            # The handshake runs on the connection's own thread: a client that stalls
            # holds up no one else.
            request.settimeout(20)
            try:
                request = context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as err:
                say("HANDSHAKE-FAILED " + str(err))
                request.close()
                return
            super().finish_request(request, client_address)

    server = Server((args.bind, 0), Handler)
    host, port = server.server_address[:2]
    say("Serving HTTPS on %s port %d" % (host, port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
