#!/bin/sh
# stuck.sh walks through what to check when a job seems stuck or failed, one
# step at a time, against the Accepted sandbox: it follows the tracking id,
# polls by hand, watches the dead-man's switch fail a stalled job, finds
# failed jobs and a webhook that gave up (and redelivers it), reads the
# trace id, and shows what being rate limited looks like.
#
# Needs a POSIX sh, curl, and python3 to read JSON (both on a stock Debian):
#
#   sh examples/curl/stuck.sh
#
# Environment:
#   ACCEPTED_URL   the sandbox (default http://localhost:8080)
#   ACCEPTED_KEY   your API key; when empty, a new sandbox key is made and printed
#
# Exit status: 0 when every step showed what it should, 1 otherwise.
set -u

BASE=${ACCEPTED_URL:-http://localhost:8080}
KEY=${ACCEPTED_KEY:-}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# fields NAME…: print fields of the JSON body of the last answer, one per
# line ("a.b" for nested ones, "a.0.b" for an array's item, an empty line
# when missing).
fields() {
	python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    v = doc
    for k in path.split("."):
        if isinstance(v, list) and k.isdigit() and int(k) < len(v):
            v = v[int(k)]
        elif isinstance(v, dict):
            v = v.get(k)
        else:
            v = None
    print("" if v is None else v)' "$tmp/body" "$@"
}

# header NAME: print a header of the last answer.
header() {
	grep -i "^$1:" "$tmp/head" | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

# call METHOD PATH [curl args…]: send a request with the key, keep the body
# and headers in $tmp, print the HTTP status. No -L: we want to see a 303.
call() {
	method=$1 path=$2
	shift 2
	curl -sS -X "$method" -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' \
		-H "Authorization: Bearer $KEY" "$@" "$BASE$path"
}

fail() {
	echo "FAILED: $*" >&2
	exit 1
}

if [ -z "$KEY" ]; then
	[ "$(call POST /v1/sandbox/keys)" = 201 ] || fail "no sandbox key"
	KEY=$(fields key)
	echo "using a new sandbox key $KEY (set ACCEPTED_KEY to reuse it)" >&2
fi

# region track
# Step 1: the tracking id. The 202's Location header is the job's status
# monitor, and the body's id names the job. Keep both: they are how you (and
# support) find the job again. This job's worker will go quiet after its
# first step, as a hung worker would.
code=$(call POST /v1/reports -H 'Content-Type: application/json' \
	-d '{"title":"Stuck","from":"2026-01-01","to":"2026-01-31","simulate":{"outcome":"stall","duration_seconds":10}}')
[ "$code" = 202 ] || fail "POST /v1/reports answered $code"
monitor=$(header Location)
job=$(fields id)
echo "1. accepted $job; its status monitor is $monitor"
# endregion track

# region poll
# Step 2: poll by hand. A running job answers 200 with its status, its
# progress and a Retry-After; a finished one answers 303 (succeeded) or 200
# with status failed or canceled.
code=$(call GET "$monitor")
{ read -r status; read -r percent; } <<EOF
$(fields status percent_complete)
EOF
echo "2. GET $monitor: $code, $status at $percent%, Retry-After: $(header Retry-After)"
# endregion poll

# region stall
# Step 3: a stalled job. Its percent_complete stops moving. The sandbox's
# dead-man's switch fails a job whose worker has been silent for twice its
# expected duration, with the error job_stalled: no job stays "processing"
# forever. Poll as Retry-After says until it ends.
deadline=$(($(date +%s) + 120))
while :; do
	code=$(call GET "$monitor")
	status=$(fields status)
	[ "$status" = failed ] || [ "$code" = 303 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || fail "$job still $status after 120 s"
	wait_s=$(header Retry-After)
	echo "   $job: $status at $(fields percent_complete)%; next poll in ${wait_s:-1}s"
	sleep "${wait_s:-1}"
done
{ read -r errcode; read -r title; } <<EOF
$(fields error.code error.title)
EOF
echo "3. $job ended $status: $errcode ($title)"
[ "$errcode" = job_stalled ] || fail "want job_stalled, got '$errcode'"
# endregion stall

# region failed
# Step 4: find failed jobs. GET /v1/jobs lists this key's jobs, newest
# first; status=failed keeps the failed ones, each with its error. Follow
# next_page_token while it is not empty for more.
code=$(call GET "/v1/jobs?status=failed&page_size=10")
[ "$code" = 200 ] || fail "GET /v1/jobs answered $code"
python3 -c '
import json, sys
page = json.load(open(sys.argv[1]))
for j in page["jobs"]:
    print("4. failed: %s (%s) at %s: %s" % (j["id"], j["kind"], j["finished_at"], j["error"]["code"]))
print("   next_page_token: %r" % page["next_page_token"])' "$tmp/body"
# endregion failed
[ "$(fields jobs.0.id)" = "$job" ] || fail "$job is not the newest failed job"

# region deadletter
# Step 5: find webhooks that gave up. Here an inbox of the sandbox answers
# 410 Gone, which disables its URL at once; a receiver that keeps failing
# ends the same way after the last retry. GET /v1/webhooks/dead-letters
# lists them with their last error and a link to redeliver.
[ "$(call POST /v1/sandbox/inboxes)" = 201 ] || fail "no inbox"
{ read -r inbox; read -r inbox_url; } <<EOF
$(fields id url)
EOF
[ "$(call PUT "/v1/sandbox/inboxes/$inbox/behaviour" -H 'Content-Type: application/json' -d '{"status":410,"count":1}')" = 200 ] ||
	fail "could not set the inbox's behaviour"
code=$(call POST /v1/imports -H 'Content-Type: application/json' \
	-d '{"rows":[{"sku":"MUG-1","name":"Mug","quantity":1,"price_cents":990}],"callback_url":"'"$inbox_url"'","simulate":{"duration_seconds":0}}')
[ "$code" = 202 ] || fail "POST /v1/imports answered $code"
deliveries=$(fields deliveries_url)
deadline=$(($(date +%s) + 60))
until [ "$(call GET "$deliveries")" = 200 ] && [ "$(fields state)" = disabled ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "the webhook did not give up: $(fields state)"
	sleep 1
done
code=$(call GET /v1/webhooks/dead-letters)
[ "$code" = 200 ] || fail "GET /v1/webhooks/dead-letters answered $code"
{ read -r msg; read -r state; read -r last_error; read -r redeliver; } <<EOF
$(fields dead_letters.0.message_id dead_letters.0.state dead_letters.0.last_error dead_letters.0.links.redeliver)
EOF
echo "5. dead letter $msg: $state: $last_error"
echo "   redeliver with POST $redeliver"
# endregion deadletter
[ -n "$redeliver" ] || fail "no dead letter to redeliver"

# region redeliver
# Step 6: redeliver it, once the receiver is fixed (this inbox now answers
# 204). The webhook goes out again with the same webhook-id, and leaves the
# dead-letter list; its delivery log shows the new attempt.
idem=$(python3 -c 'import uuid; print(uuid.uuid4())')
code=$(call POST "$redeliver" -H "Idempotency-Key: $idem")
[ "$code" = 202 ] || fail "redelivery answered $code"
deadline=$(($(date +%s) + 60))
until [ "$(call GET "$deliveries")" = 200 ] && [ "$(fields state)" = delivered ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "the redelivery did not arrive: $(fields state)"
	sleep 1
done
echo "6. redelivered $msg: $(fields state)"
# endregion redeliver

# region trace
# Step 7: the trace id. The job body's trace_id names the trace that
# started the job, from the POST to the worker; an operator finds every
# span of it in their tracing system. Quote it, with the job id, to support.
code=$(call GET "$monitor")
{ read -r trace; read -r created; read -r updated; } <<EOF
$(fields trace_id created_at updated_at)
EOF
echo "7. $job: trace_id ${trace:-(none on this sandbox)}"
echo "   for support: job $job, trace ${trace:-none}, created $created, last changed $updated"
# endregion trace

# region ratelimit
# Step 8: being rate limited. Polling faster than the policy allows answers
# 429 with Retry-After; RateLimit-Policy and RateLimit say the quota and what
# is left. A client that honours Retry-After never gets here.
# Sixty polls in a row over one connection (one curl, one URL after another)
# go far faster than 10 a second; the next poll then finds the bucket empty.
set --
i=0
while [ "$i" -lt 60 ]; do
	set -- "$@" -o /dev/null "$BASE$monitor"
	i=$((i + 1))
done
i=0
while [ "$i" -lt 5 ]; do
	curl -sS -H "Authorization: Bearer $KEY" "$@" >/dev/null
	code=$(call GET "$monitor")
	[ "$code" = 429 ] && break
	i=$((i + 1))
done
[ "$code" = 429 ] || fail "five bursts of 60 polls were never refused"
echo "8. a poll after a burst of 60 answered 429 $(fields code): Retry-After: $(header Retry-After)"
echo "   RateLimit-Policy: $(header RateLimit-Policy)"
echo "   RateLimit: $(header RateLimit)"
# endregion ratelimit
