#!/usr/bin/env python3
"""Start a job on the Accepted sandbox and follow it to the end.

It polls the status monitor as Retry-After says, follows the 303 See Other
to the result, reports a failed job by its error-catalog code, and cancels
the job if you press Ctrl-C. Standard library only (Python 3.9+):

    python3 examples/python/poll.py

Environment:
    ACCEPTED_URL       the sandbox (default http://localhost:8080)
    ACCEPTED_KEY       your API key; when empty, a new sandbox key is made and printed
    ACCEPTED_KIND      report (default) or export
    ACCEPTED_SIMULATE  a sandbox scenario as JSON, e.g. {"outcome":"fail","fail_code":"upstream_unavailable"}
    ACCEPTED_TIMEOUT   seconds to wait for the job in all (default 300)
    ACCEPTED_OUT       directory an export is saved in (default .)

Exit status: 0 done, 1 error or timeout, 3 the job failed, 130 cancelled by a signal.
"""

import hashlib
import json
import os
import random
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

BASE = os.environ.get("ACCEPTED_URL") or "http://localhost:8080"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx answers back as they are: the 303 is how the monitor says "done"."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# With redirect_request returning None, urllib raises HTTPError for the 303,
# and every 4xx/5xx too; request() turns them back into plain answers.
opener = urllib.request.build_opener(NoRedirect)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived."""


class DeadlineExceeded(Exception):
    """The job took longer than ACCEPTED_TIMEOUT."""


def request(method, url, key, body=None, headers=None):
    """Send one request; return (status, headers, body bytes) for any HTTP status."""
    req = urllib.request.Request(urllib.parse.urljoin(BASE, url), method=method, data=body)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with opener.open(req, timeout=30) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


class ProblemError(Exception):
    """An error answer; problem is its RFC 9457 body when it has one."""

    def __init__(self, method, url, status, headers, body):
        self.problem = {}
        if (headers.get("Content-Type") or "").startswith("application/problem+json"):
            self.problem = json.loads(body)
        p = self.problem
        super().__init__(f"{method} {url}: {status} {p.get('code', '')}: {p.get('title', '')} {p.get('detail', '')}")


# region start
def start(kind, body, key):
    """POST the job. The Idempotency-Key makes a retry safe: if the first POST
    reached the server but its answer was lost, the retry replays that answer
    instead of starting a second job. Returns the job and the seconds to wait
    before the first poll."""
    url, data = f"/v1/{kind}s", json.dumps(body).encode()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    try:
        status, hdrs, raw = request("POST", url, key, data, headers)
    except OSError as err:  # a network error (URLError, timeout), not an HTTP status
        print(f"POST failed ({err}); retrying once with the same Idempotency-Key", file=sys.stderr)
        status, hdrs, raw = request("POST", url, key, data, headers)
    if status != 202:  # a 4xx problem: nothing was created
        raise ProblemError("POST", url, status, hdrs, raw)
    job = json.loads(raw)
    job["status_url"] = hdrs["Location"]  # the status monitor (equal to status_url)
    return job, retry_after(hdrs) or 1
# endregion start


# region poll
def poll(job, key, deadline, wait):
    """Read the status monitor until the job is over, first after `wait` seconds
    (the 202's Retry-After). A running job answers 200 with Retry-After, which
    we obey. Without it, and on 429 or 503, we back off exponentially (capped,
    with jitter so that many clients do not poll in step). Returns (job, result
    URL from the 303, or None)."""
    attempt = 0
    while True:
        if time.monotonic() + wait > deadline:
            raise DeadlineExceeded()
        time.sleep(wait)
        wait = backoff(attempt)  # unless the server says otherwise
        try:
            status, hdrs, raw = request("GET", job["status_url"], key)
        except OSError as err:  # a network error: a GET is safe to repeat
            status, hdrs = None, {}
            print(f"poll failed ({err}); retrying", file=sys.stderr)
        if status == 303:  # done: the result is at Location
            return json.loads(raw), hdrs["Location"]
        if status == 200:
            job = json.loads(raw)
            if job["status"] in ("failed", "canceled"):
                return job, None
            if retry_after(hdrs) is not None:
                wait, attempt = retry_after(hdrs), -1  # the server knows best
            print(f"{job['id']}: {job['status']} {job['percent_complete']}%; next poll in {wait:.1f}s  {job.get('message', '')}", flush=True)
        elif status in (429, 503):
            wait = max(wait, retry_after(hdrs) or 0)
            print(f"{job['id']}: {status}; next poll in {wait:.1f}s", flush=True)
        elif status is not None:  # 401, 404, 410: polling again will not help
            raise ProblemError("GET", job["status_url"], status, hdrs, raw)
        attempt += 1
# endregion poll


def backoff(attempt):
    """1 s doubling per attempt, capped at 30 s, with "equal jitter": a random
    wait between half and all of it."""
    d = min(2 ** min(attempt, 5), 30)
    return d / 2 + random.uniform(0, d / 2)


def retry_after(hdrs):
    """Retry-After as delay-seconds, the form the sandbox sends."""
    v = hdrs.get("Retry-After") or ""
    return int(v) if v.isdigit() else None


# region result
def print_report(result_url, key):
    """Read the report the 303 pointed at."""
    status, hdrs, raw = request("GET", result_url, key)
    if status != 200:
        raise ProblemError("GET", result_url, status, hdrs, raw)
    r = json.loads(raw)
    t = r["totals"]
    print(f'report {r["id"]} "{r["title"]}" {r["from"]}..{r["to"]}: {len(r["days"])} days, '
          f'{t["orders"]} orders, revenue {t["revenue_cents"] / 100:.2f}, {t["refunds"]} refunds')


def save_export(job, file_url, key, directory):
    """Download the file the 303 pointed at and check its SHA-256 against the
    one the export resource publishes."""
    status, hdrs, raw = request("GET", job["links"]["resource"], key)
    if status != 200:
        raise ProblemError("GET", job["links"]["resource"], status, hdrs, raw)
    meta = json.loads(raw)["file"]
    status, hdrs, data = request("GET", file_url, key)
    if status != 200:
        raise ProblemError("GET", file_url, status, hdrs, data)
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["sha256"]:  # never write a corrupt file that looks finished
        raise ValueError(f"{meta['name']}: sha256 {digest}, the export says {meta['sha256']}")
    path = os.path.join(directory, os.path.basename(meta["name"]))
    with open(path, "wb") as f:
        f.write(data)
    print(f"saved {path} ({len(data)} bytes), sha256 {digest} verified")
# endregion result


# region failure
def failure(job):
    """Report a failed job. The error is an RFC 9457 problem whose code names an
    entry of the error catalog: branch on the code, show the title, and quote
    the job id to support."""
    p = job.get("error") or {"code": "unknown", "title": "the job failed without an error"}
    print(f"job {job['id']} failed: {p['code']}: {p['title']}", file=sys.stderr)
    if p.get("detail"):
        print(f"  {p['detail']}\n  more: {p.get('type')}", file=sys.stderr)
    return 3
# endregion failure


# region cancel
def cancel(job, key):
    """DELETE on the status monitor stops the work on the server, so nobody
    pays for a result no one will read. A 409 means it had already finished."""
    print(f"interrupted: canceling {job['id']}", file=sys.stderr)
    status, hdrs, raw = request("DELETE", job["status_url"], key)
    if status == 200:
        print(f"{job['id']} canceled", file=sys.stderr)
    elif status == 409:
        print(f"{job['id']} had already finished", file=sys.stderr)
    else:
        print("cancel:", ProblemError("DELETE", job["status_url"], status, hdrs, raw), file=sys.stderr)
    return 130


def on_signal(signum, frame):
    # Turn SIGTERM (and SIGINT, for symmetry) into an exception that unwinds
    # the poll loop, even out of time.sleep, to the cancel in main().
    raise Interrupted()
# endregion cancel


def main():
    key = os.environ.get("ACCEPTED_KEY")
    kind = os.environ.get("ACCEPTED_KIND") or "report"
    timeout = int(os.environ.get("ACCEPTED_TIMEOUT") or 300)
    if not key:
        status, hdrs, raw = request("POST", "/v1/sandbox/keys", None)
        if status != 201:
            raise ProblemError("POST", "/v1/sandbox/keys", status, hdrs, raw)
        key = json.loads(raw)["key"]
        print(f"using a new sandbox key {key} (set ACCEPTED_KEY to reuse it)", file=sys.stderr)
    body = {"title": "January", "from": "2026-01-01", "to": "2026-01-31"}
    if kind == "export":
        body = {"format": "csv", "from": "2026-01-01", "to": "2026-01-31"}
    if os.environ.get("ACCEPTED_SIMULATE"):
        body["simulate"] = json.loads(os.environ["ACCEPTED_SIMULATE"])

    job, wait = start(kind, body, key)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"started {job['id']} ({job['kind']}): {job['status']}; status at {job['status_url']}", flush=True)
    try:
        job, result_url = poll(job, key, time.monotonic() + timeout, wait)
    except Interrupted:
        return cancel(job, key)
    except DeadlineExceeded:
        print(f"gave up after {timeout}s; the job goes on: {urllib.parse.urljoin(BASE, job['status_url'])}", file=sys.stderr)
        return 1
    if job["status"] == "failed":
        return failure(job)
    if job["status"] == "canceled":
        print(f"{job['id']} was canceled")
        return 1
    if kind == "export":
        save_export(job, result_url, key, os.environ.get("ACCEPTED_OUT") or ".")
    else:
        print_report(result_url, key)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ProblemError, ValueError, OSError) as err:
        print(err, file=sys.stderr)
        sys.exit(1)
