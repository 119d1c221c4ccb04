#!/usr/bin/env python3
"""Verifies an octo-webhooks delivery (Standard Webhooks signature) with the
Python standard library only. docs/receiving.md explains each step.

Use verify() in your HTTP handler with the raw request body (bytes, before
any JSON parsing) and the request headers. Run as a script, it reads one JSON
object from stdin -- {"secret": "whsec_...", "headers": {...}, "body": "..."} --
and exits 0 when the signature verifies (the project's tests run it so).
"""
import base64
import hashlib
import hmac
import json
import sys
import time

TOLERANCE_SECONDS = 5 * 60  # refuse deliveries older (or newer) than this


class VerificationError(Exception):
    pass


def verify(secret: str, headers: dict, body: bytes) -> dict:
    """Returns the parsed body when the signature is valid, else raises."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    timestamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise VerificationError("webhook-timestamp is not a number")
    if abs(time.time() - sent_at) > TOLERANCE_SECONDS:
        raise VerificationError("webhook-timestamp is too old or in the future")

    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several space-separated "v1,<base64>" signatures during a secret rotation.
    for candidate in signatures.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return json.loads(body)
    raise VerificationError("no signature matches")


if __name__ == "__main__":
    given = json.load(sys.stdin)
    try:
        payload = verify(given["secret"], given["headers"], given["body"].encode())
    except VerificationError as e:
        print(f"not verified: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"verified: {given['headers']['webhook-id']}, body keys {','.join(payload)}")
