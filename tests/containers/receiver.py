#!/usr/bin/env python3
"""The webhook receiver of scripts/containers.sh's smoke test, in a container.

Listens on 0.0.0.0:$PORT (default 8000) inside its container, checks each
POST's Standard Webhooks signature with $OCTO_WEBHOOK_SECRET ("whsec_" +
base64) and prints one JSON line a request on stdout:
  {"verified": true, "webhook_id": ..., "path": ..., "keys": [...], "event": ...}
Answers 204 to a valid delivery and 401 otherwise (so a bad one is retried
and seen). Standard library only (Debian's python3).
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = base64.b64decode(os.environ["OCTO_WEBHOOK_SECRET"].removeprefix("whsec_"))


def verified(msg_id, timestamp, signatures, body):
    if not (msg_id and timestamp and signatures) or abs(time.time() - int(timestamp)) > 300:
        return False
    mac = hmac.new(SECRET, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    return any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected) for s in signatures.split())


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = verified(self.headers.get("webhook-id"), self.headers.get("webhook-timestamp"),
                      self.headers.get("webhook-signature"), body)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        line = {"verified": ok, "webhook_id": self.headers.get("webhook-id"), "path": self.path,
                "keys": sorted(doc) if isinstance(doc, dict) else [],
                "event": (doc.get("webhook") or {}).get("event") if isinstance(doc, dict) else None,
                "booking": doc.get("booking") if isinstance(doc, dict) else None}
        print(json.dumps(line), flush=True)
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass  # one JSON line a request, nothing else


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"receiver listening on port {port}", file=sys.stderr, flush=True)
    HTTPServer(("0.0.0.0", port), Handler).serve_forever()
