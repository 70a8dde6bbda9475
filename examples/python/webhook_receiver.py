#!/usr/bin/env python3
"""Receive the Accepted sandbox's webhooks (an import's import.complete,
import.partial or import.failed): verify each Standard Webhooks signature by
hand, drop deliveries already stored, and answer 2xx only once the event is
safely on disk. Standard library only (Python 3.9+):

    python3 examples/python/webhook_receiver.py

then start an import with "callback_url" set to the URL it prints (the
sandbox must be able to reach it: on your own machine, run the sandbox with
-allow-private-callbacks). `from webhook_receiver import verify` to use the
check alone.

Environment:
    ACCEPTED_URL             the sandbox (default http://localhost:8080)
    ACCEPTED_KEY             your API key; its signing secret is read from GET /v1/webhooks/secret.
                             When empty, a new sandbox key is made and printed.
    ACCEPTED_WEBHOOK_SECRET  the signing secret (whsec_...); when set, the sandbox is not asked
    ACCEPTED_LISTEN          where to listen (default 127.0.0.1:8081; port 0 picks a free one)
    ACCEPTED_EVENTS_FILE     the JSON Lines file events are stored in (default webhook-events.jsonl)
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How far a webhook's timestamp may be from our clock, in seconds. It bounds
# how long a captured delivery can be replayed.
TOLERANCE = 5 * 60


class VerificationError(Exception):
    pass


# region verify
def verify(secret, msg_id, timestamp, signatures, body, now=None):
    """Check a Standard Webhooks signature: HMAC-SHA256, keyed with the
    base64-decoded part of the secret after "whsec_", over
    "{id}.{timestamp}.{body}" (body: the raw bytes). The header may hold
    several space-separated signatures (one per secret during a rotation);
    any one "v1," match will do. Raises VerificationError when it fails."""
    if not (msg_id and timestamp and signatures):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not timestamp.isdigit():
        raise VerificationError("webhook-timestamp is not Unix seconds")
    off = round((time.time() if now is None else now) - int(timestamp))
    if abs(off) > TOLERANCE:
        raise VerificationError(f"webhook-timestamp is {off}s off our clock: a replay, or a clock to fix")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    want = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for sig in signatures.split(" "):
        version, _, value = sig.partition(",")
        try:
            got = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if version == "v1" and hmac.compare_digest(got, want):  # constant time
            return
    raise VerificationError("no signature matches")
# endregion verify


# region dedupe
class Store:
    """Append each event to a JSON Lines file and remember the ids it holds
    (reading the file first, so a restart does not forget). Senders retry
    until they see a 2xx, and a redelivery reuses the id, so the same event
    can arrive twice: the id is the key. The lock spans check, write and sync,
    so two copies arriving at once are stored once."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.seen = set()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.seen = {json.loads(line)["webhook_id"] for line in f if line.strip()}
        self.file = open(path, "a", encoding="utf-8")

    def add(self, msg_id, event):
        """Store the event unless its id is stored; return once it is on disk."""
        with self.lock:
            if msg_id in self.seen:
                return False
            received = datetime.datetime.now(datetime.timezone.utc).isoformat()
            self.file.write(json.dumps({"webhook_id": msg_id, "received_at": received, "event": event}) + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())
            self.seen.add(msg_id)
            return True
# endregion dedupe


class Receiver(BaseHTTPRequestHandler):
    secret = ""
    store = None

    def do_POST(self):
        if self.path != "/webhooks":
            return self.reply(404, "POST /webhooks")
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            return self.reply(413, "body too large")
        # The signature covers the exact bytes sent: read them once, verify,
        # and only then parse.
        body = self.rfile.read(length)
        msg_id = self.headers.get("webhook-id")
        try:
            verify(self.secret, msg_id, self.headers.get("webhook-timestamp"), self.headers.get("webhook-signature"), body)
            event = json.loads(body)
        except VerificationError as err:
            print(f"rejected {msg_id}: {err}", flush=True)
            return self.reply(401, str(err))
        except ValueError:
            return self.reply(400, "body is not JSON")
        try:
            stored = self.store.add(msg_id, event)
        except OSError as err:  # not stored: a 5xx makes the sender try again later
            print(f"could not store {msg_id}: {err}", flush=True)
            return self.reply(500, "could not store the event")
        if stored:
            print(f"stored {msg_id} ({event.get('type')})", flush=True)
        else:
            print(f"duplicate {msg_id} ({event.get('type')}): already stored, dropped", flush=True)
        self.reply(200, "ok")  # a 2xx for duplicates too, so the sender stops retrying

    def reply(self, status, text):
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass  # the lines above say what happened


def fetch_secret(base, key):
    def call(method, path, key):
        req = urllib.request.Request(base + path, method=method)
        if key:
            req.add_header("Authorization", "Bearer " + key)
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.load(res)

    if not key:
        key = call("POST", "/v1/sandbox/keys", None)["key"]
        print(f"using a new sandbox key {key}: start imports with it (set ACCEPTED_KEY to reuse it)", file=sys.stderr)
    return call("GET", "/v1/webhooks/secret", key)["secret"]


def main():
    env = os.environ
    Receiver.secret = env.get("ACCEPTED_WEBHOOK_SECRET") or fetch_secret(
        (env.get("ACCEPTED_URL") or "http://localhost:8080").rstrip("/"), env.get("ACCEPTED_KEY"))
    Receiver.store = Store(env.get("ACCEPTED_EVENTS_FILE") or "webhook-events.jsonl")
    host, _, port = (env.get("ACCEPTED_LISTEN") or "127.0.0.1:8081").rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Receiver)
    # SIGTERM ends the server like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on http://{server.server_address[0]}:{server.server_address[1]}/webhooks", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
