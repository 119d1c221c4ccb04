#!/usr/bin/env python3
"""HTTPS receivers on 127.0.0.1 for the delivery tests (TlsE2eTest).

Makes, with the openssl CLI, a local CA and four server certificates in DIR,
then serves HTTPS on one free 127.0.0.1 port per certificate:

  valid        signed by the CA, for DNS:localhost and IP:127.0.0.1
  self_signed  for the same names, but signed by itself (no trusted chain)
  expired      signed by the CA, for the same names, valid in 2020 only
  wrong_host   signed by the CA, for DNS:wrong-host.octo.test only

Every request that gets past the handshake is answered 200 "ok" and logged
as "<name> <METHOD> <path>" to DIR/requests.log. Once all listen, the ports
are written to DIR/ports.json ({"valid": 12345, ...}), atomically.

Usage: tls_receiver.py DIR     (runs until killed)
"""
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import sys
import threading

NAMES = ("valid", "self_signed", "expired", "wrong_host")
LOCAL_SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1"

CA_CONFIG = """[ca]
default_ca = test_ca
[test_ca]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none
[any_name]
commonName = supplied
[local]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
[wrong]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:wrong-host.octo.test
"""


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"tls_receiver: openssl {' '.join(args)} failed:\n{r.stderr}")


def new_key_args(key):
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key]


def make_certificates(d):
    openssl("req", "-x509", *new_key_args(f"{d}/ca.key"), "-out", f"{d}/ca.pem", "-days", "2",
            "-subj", "/CN=octo test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-x509", *new_key_args(f"{d}/self_signed.key"), "-out", f"{d}/self_signed.pem",
            "-days", "2", "-subj", "/CN=localhost", "-addext", LOCAL_SAN)
    with open(f"{d}/ca.cnf", "w", encoding="utf-8") as f:
        f.write(CA_CONFIG.format(dir=d))
    open(f"{d}/index.txt", "w", encoding="utf-8").close()
    with open(f"{d}/serial", "w", encoding="utf-8") as f:
        f.write("1000\n")
    signed = {
        "valid": ("local", ["-days", "2"]),
        "expired": ("local", ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]),
        "wrong_host": ("wrong", ["-days", "2"]),
    }
    for name, (extensions, validity) in signed.items():
        openssl("req", "-new", *new_key_args(f"{d}/{name}.key"), "-out", f"{d}/{name}.csr",
                "-subj", "/CN=localhost" if extensions == "local" else "/CN=wrong-host.octo.test")
        openssl("ca", "-batch", "-notext", "-config", f"{d}/ca.cnf", "-cert", f"{d}/ca.pem",
                "-keyfile", f"{d}/ca.key", "-in", f"{d}/{name}.csr", "-out", f"{d}/{name}.pem",
                "-extensions", extensions, *validity)


def serve(d):
    log_lock = threading.Lock()
    log = open(f"{d}/requests.log", "a", encoding="utf-8")

    def handler_for(name):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                with log_lock:
                    log.write(f"{name} POST {self.path}\n")
                    log.flush()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        return Handler

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    ports = {}
    for name in NAMES:
        server = Server(("127.0.0.1", 0), handler_for(name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(f"{d}/{name}.pem", f"{d}/{name}.key")
        # A failed handshake raises in accept(); socketserver drops that
        # connection (an OSError) and keeps serving.
        server.socket = context.wrap_socket(server.socket, server_side=True)
        ports[name] = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(f"{d}/ports.json.tmp", "w", encoding="utf-8") as f:
        json.dump(ports, f)
    os.rename(f"{d}/ports.json.tmp", f"{d}/ports.json")
    print(f"tls_receiver: serving {ports}", flush=True)
    threading.Event().wait()


def main(argv):
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        sys.exit("usage: tls_receiver.py DIR")
    d = os.path.abspath(argv[0])
    make_certificates(d)
    serve(d)


if __name__ == "__main__":
    main(sys.argv[1:])
