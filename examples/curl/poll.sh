#!/bin/sh
# poll.sh starts a job on the Accepted sandbox and follows it to the end: it
# polls the status monitor as Retry-After says, follows the 303 See Other to
# the result, reports a failed job by its error-catalog code, and cancels the
# job if you press Ctrl-C.
#
# Needs a POSIX sh, curl, and python3 to read JSON (both on a stock Debian):
#
#   sh examples/curl/poll.sh
#
# Environment:
#   ACCEPTED_URL       the sandbox (default http://localhost:8080)
#   ACCEPTED_KEY       your API key; when empty, a new sandbox key is made and printed
#   ACCEPTED_KIND      report (default) or export
#   ACCEPTED_SIMULATE  a sandbox scenario as JSON, e.g. {"outcome":"fail","fail_code":"upstream_unavailable"}
#   ACCEPTED_TIMEOUT   seconds to wait for the job in all (default 300)
#   ACCEPTED_OUT       directory an export is saved in (default .)
#
# Exit status: 0 done, 1 error or timeout, 3 the job failed, 130 cancelled by a signal.
set -u

BASE=${ACCEPTED_URL:-http://localhost:8080}
KEY=${ACCEPTED_KEY:-}
KIND=${ACCEPTED_KIND:-report}
TIMEOUT=${ACCEPTED_TIMEOUT:-300}
OUT=${ACCEPTED_OUT:-.}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# fields NAME…: print fields of the JSON body of the last answer, one per
# line ("a.b" for nested ones, an empty line when missing). Read them with
# `read`, so that one python3 serves several fields.
fields() {
	python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    v = doc
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    print("" if v is None else v)' "$tmp/body" "$@"
}

# header NAME: print a header of the last answer.
header() {
	grep -i "^$1:" "$tmp/head" | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

# call METHOD PATH [curl args…]: send a request with the key, keep the body
# and headers in $tmp, print the HTTP status. No -L: we want to see the 303.
call() {
	method=$1 path=$2
	shift 2
	case $path in http://* | https://*) ;; *) path=$BASE$path ;; esac
	curl -sS -X "$method" -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' \
		-H "Authorization: Bearer $KEY" "$@" "$path"
}

# sha256 FILE: print its hex SHA-256 (coreutils on Linux, shasum on macOS).
sha256() {
	if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

# problem: describe the last error answer by its catalog code.
problem() {
	fields status code title detail | tr '\n' ' ' >&2
	echo >&2
}

if [ -z "$KEY" ]; then
	[ "$(call POST /v1/sandbox/keys)" = 201 ] || { problem; exit 1; }
	KEY=$(fields key)
	echo "using a new sandbox key $KEY (set ACCEPTED_KEY to reuse it)" >&2
fi

if [ "$KIND" = export ]; then
	body='{"format":"csv","from":"2026-01-01","to":"2026-01-31"'
else
	body='{"title":"January","from":"2026-01-01","to":"2026-01-31"'
fi
body="$body${ACCEPTED_SIMULATE:+,\"simulate\":$ACCEPTED_SIMULATE}}"

# region start
# The Idempotency-Key makes a retry safe: if the first POST reached the
# server but its answer was lost, the retry replays that answer instead of
# starting a second job. curl exits non-zero only on network errors.
idem=$(python3 -c 'import uuid; print(uuid.uuid4())')
post() {
	call POST "/v1/${KIND}s" -H 'Content-Type: application/json' \
		-H "Idempotency-Key: $idem" --data-binary "$body"
}
code=$(post) || {
	echo "POST failed; retrying once with the same Idempotency-Key" >&2
	sleep 1
	code=$(post) || exit 1
}
[ "$code" = 202 ] || { problem; exit 1; } # a 4xx problem: nothing was created
{ read -r job; read -r status; read -r resource; } <<EOF
$(fields id status links.resource)
EOF
monitor=$(header Location)   # the status monitor (equal to status_url)
wait_s=$(header Retry-After) # how long to wait before the first poll
echo "started $job ($KIND): $status; status at $monitor"
# endregion start

# region cancel
# On Ctrl-C or SIGTERM, DELETE on the status monitor stops the work on the
# server, so nobody pays for a result no one will read. A 409 means the job
# had already finished.
cancel() {
	[ -n "${sleeper:-}" ] && kill "$sleeper" 2>/dev/null
	echo "interrupted: canceling $job" >&2
	case $(call DELETE "$monitor") in
	200) echo "$job canceled" >&2 ;;
	409) echo "$job had already finished" >&2 ;;
	*) problem ;;
	esac
	exit 130
}
trap cancel INT TERM
# endregion cancel

# backoff N: 1 s doubling per attempt, capped at 30 s, with "equal jitter":
# a random wait between half and all of it (whole seconds, at least 1).
backoff() {
	d=2
	i=0
	while [ "$i" -lt "$1" ] && [ "$d" -lt 30 ]; do d=$((d * 2)) i=$((i + 1)); done
	[ "$d" -gt 30 ] && d=30
	r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	echo $((d / 2 + r % (d / 2 + 1)))
}

# region poll
# The first poll waits the 202's Retry-After. A running job answers 200 with
# Retry-After, which we obey. Without it, and on 429 or 503, we back off
# exponentially (capped, with jitter so that many clients do not poll in
# step). `sleep & wait` lets Ctrl-C in at once.
deadline=$(($(date +%s) + TIMEOUT))
attempt=0
while :; do
	if [ $(($(date +%s) + ${wait_s:-1})) -gt "$deadline" ]; then
		echo "gave up after ${TIMEOUT}s; the job goes on: $BASE$monitor" >&2
		exit 1
	fi
	sleep "${wait_s:-1}" & sleeper=$!
	wait "$sleeper"
	wait_s=$(backoff "$attempt") # unless the server says otherwise
	attempt=$((attempt + 1))
	code=$(call GET "$monitor") || code=000 # 000: a network error; a GET is safe to repeat
	after=$(header Retry-After)
	case $code in
	303) break ;; # done: the result is at Location
	200)
		{ read -r status; read -r percent; read -r message; } <<EOF
$(fields status percent_complete message)
EOF
		[ "$status" = failed ] || [ "$status" = canceled ] && break
		case $after in '' | *[!0-9]*) ;; *) wait_s=$after attempt=0 ;; esac
		echo "$job: $status $percent%; next poll in ${wait_s}s  $message"
		;;
	429 | 503 | 000)
		case $after in '' | *[!0-9]*) ;; *) [ "$after" -gt "$wait_s" ] && wait_s=$after ;; esac
		echo "$job: $code; next poll in ${wait_s}s"
		;;
	*) problem; exit 1 ;; # 401, 404, 410: polling again will not help
	esac
done
# endregion poll

# region failure
# A failed job carries an RFC 9457 problem whose code names an entry of the
# error catalog: branch on the code, show the title, quote the job id to support.
if [ "$code" != 303 ]; then
	if [ "$status" = failed ]; then
		{ read -r code; read -r title; read -r detail; read -r type; } <<EOF
$(fields error.code error.title error.detail error.type)
EOF
		echo "job $job failed: $code: $title" >&2
		echo "  $detail" >&2
		echo "  more: $type" >&2
		exit 3
	fi
	echo "$job was canceled"
	exit 1
fi
# endregion failure

# region result
result=$(header Location)
if [ "$KIND" = export ]; then
	# Learn the file's name and SHA-256 from the export, then download the
	# file the 303 pointed at and check it before saving it: never a corrupt
	# file that looks finished.
	[ "$(call GET "$resource")" = 200 ] || { problem; exit 1; }
	{ read -r name; read -r want; } <<EOF
$(fields file.name file.sha256)
EOF
	name=$(basename "$name")
	[ "$(call GET "$result")" = 200 ] || { problem; exit 1; }
	got=$(sha256 "$tmp/body")
	if [ "$got" != "$want" ]; then
		echo "$name: sha256 $got, the export says $want" >&2
		exit 1
	fi
	mv "$tmp/body" "$OUT/$name"
	echo "saved $OUT/$name ($(wc -c <"$OUT/$name" | tr -d ' ') bytes), sha256 $got verified"
else
	[ "$(call GET "$result")" = 200 ] || { problem; exit 1; }
	python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print("report %s \"%s\" %s..%s: %d days, %d orders, revenue %.2f, %d refunds" % (
    r["id"], r["title"], r["from"], r["to"], len(r["days"]), t["orders"], t["revenue_cents"] / 100, t["refunds"]))' "$tmp/body"
fi
# endregion result
