package codesamples

import (
	"fmt"
	"go/format"
	"strconv"
	"strings"
)

// A follow sample is the whole client of an operation that answers 202
// Accepted with a Location: send the request with a fresh Idempotency-Key,
// wait Retry-After, poll the status monitor until it answers 303 See Other
// (or the job ends without a result), then fetch the result. It is what a
// reader needs to copy, where the request samples of For show only the
// first step. Each uses the language's standard library alone, like For.

// FollowInput is what a follow sample sends. Key empty means the sample
// reads the secret from the environment (Auth.Env), as For's samples do;
// the try-it panel fills in the sandbox key it used instead.
type FollowInput struct {
	URL, Body, Key string
}

// Token is the placeholder FollowTemplates put where a value goes: the
// try-it script replaces each quoted token ("@@URL@@" in JavaScript,
// Python and Go, '@@URL@@' in shell) with the value quoted for that
// language. Tokens need no escaping in any of the four, so the quoted token
// is always spelled the same way.
func Token(name string) string { return "@@" + name + "@@" }

// Follows reports whether op gets follow samples: it answers 202 with a
// Location, and sends its credentials, if any, in a header.
func (op Op) Follows() bool {
	_, _, query := op.authQuery("")
	return op.FollowLocation && !query
}

// Follow returns the follow samples of op against serverURL in curl,
// JavaScript, Python and Go, or nil when op does not answer 202.
func Follow(op Op, serverURL string) []Sample {
	if !op.Follows() {
		return nil
	}
	return follow(op, FollowInput{URL: op.URL(serverURL), Body: op.Body})
}

// FollowTemplates are Follow's samples with Token("URL"), Token("BODY")
// and Token("KEY") for the request URL, the body and the API key, for the
// try-it panel to fill in with the request it sent.
func FollowTemplates(op Op) []Sample {
	if !op.Follows() {
		return nil
	}
	in := FollowInput{URL: Token("URL"), Key: Token("KEY")}
	if op.Body != "" {
		in.Body = Token("BODY")
	}
	return follow(op, in)
}

func follow(op Op, in FollowInput) []Sample {
	// The samples make their own Idempotency-Key; other headers stay.
	var hs []Param
	for _, h := range op.Headers {
		if !h.Fresh && !strings.EqualFold(h.Name, "Idempotency-Key") {
			hs = append(hs, h)
		}
	}
	op.Headers = hs
	return []Sample{
		{Lang: "curl", Label: "curl", Code: followShell(op, in)},
		{Lang: "javascript", Label: "JavaScript", Code: followJS(op, in)},
		{Lang: "python", Label: "Python", Code: followPython(op, in)},
		{Lang: "go", Label: "Go", Code: followGo(op, in)},
	}
}

// contentType is the body's media type.
func (op Op) contentType() string {
	if op.ContentType == "" {
		return "application/json"
	}
	return op.ContentType
}

var followIntro = []string{
	"Starts the job, then follows it to the end: waits Retry-After seconds,",
	"polls the status monitor (the Location of the 202) until it answers",
	"303 See Other, and fetches the result the 303 points to.",
}

func followShell(op Op, in FollowInput) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for _, l := range followIntro {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString("# Needs a POSIX sh and curl.\nset -eu\n")
	fmt.Fprintf(&b, "URL=%s\n", shellQuoteSingle(in.URL))
	auth := ""
	if h, ok := op.authHeader(); ok {
		if in.Key == "" {
			env := op.Auth.env()
			fmt.Fprintf(&b, "KEY=${%s:?set %s to your API key}\n", env, env)
		} else {
			fmt.Fprintf(&b, "KEY=%s\n", shellQuoteSingle(in.Key))
		}
		auth = fmt.Sprintf(" -H \"%s: %s$KEY\"", shellEscapeDouble(h), shellEscapeDouble(op.authPrefix()))
	}
	if in.Body != "" {
		fmt.Fprintf(&b, "BODY=%s\n", shellQuoteSingle(in.Body))
	}
	b.WriteString("ORIGIN=$(printf '%s\\n' \"$URL\" | cut -d/ -f1-3)\n")
	b.WriteString("H=$(mktemp) B=$(mktemp)\ntrap 'rm -f \"$H\" \"$B\"' EXIT\n")
	b.WriteString("# header NAME: a header of the last answer, absolute if it is a path.\n")
	b.WriteString("header() {\n\tv=$(grep -i \"^$1:\" \"$H\" | tail -n 1 | cut -d: -f2- | tr -d ' \\r')\n")
	b.WriteString("\tcase $v in /*) v=$ORIGIN$v ;; esac\n\tprintf '%s\\n' \"$v\"\n}\n")
	b.WriteString("# call [curl args…]: send a request, keep its headers and body, print its status.\n")
	fmt.Fprintf(&b, "call() { curl -sS -D \"$H\" -o \"$B\" -w '%%{http_code}'%s \"$@\"; }\n\n", auth)
	b.WriteString("# A new Idempotency-Key for each job: 128 random bits from od, which\n")
	b.WriteString("# Linux, macOS and the BSDs all have. Send the same key again to retry\n")
	b.WriteString("# this request safely: the server answers with the first job.\n")
	fmt.Fprintf(&b, "IDEMPOTENCY_KEY=%s\n", FreshShell)
	fmt.Fprintf(&b, "code=$(call -X %s \"$URL\" -H \"Idempotency-Key: $IDEMPOTENCY_KEY\"", op.method())
	for _, h := range op.Headers {
		fmt.Fprintf(&b, " \\\n\t-H %s", shellQuoteDouble(h.Name+": "+h.Value))
	}
	if in.Body != "" {
		fmt.Fprintf(&b, " \\\n\t-H %s --data-raw \"$BODY\"", shellQuoteDouble("Content-Type: "+op.contentType()))
	}
	b.WriteString(")\n")
	b.WriteString("echo \"$code\"; cat \"$B\"; echo\n")
	b.WriteString("[ \"$code\" = 202 ] || exit 1\n")
	b.WriteString("MONITOR=$(header Location)\nWAIT=$(header Retry-After)\n")
	b.WriteString("while :; do\n\tsleep \"${WAIT:-1}\"\n")
	b.WriteString("\tcode=$(call \"$MONITOR\") # no -L: the 303 says the job is done\n")
	b.WriteString("\tcase $code in\n\t303) break ;;\n")
	b.WriteString("\t200)\n\t\tstatus=$(grep -o '\"status\": *\"[a-z_]*\"' \"$B\" | head -n 1 | cut -d'\"' -f4)\n")
	b.WriteString("\t\techo \"job $status\"\n")
	b.WriteString("\t\tcase $status in succeeded | failed | canceled) cat \"$B\"; echo; [ \"$status\" = succeeded ]; exit ;; esac\n\t\t;;\n")
	b.WriteString("\t429 | 503) ;; # busy: wait as Retry-After says\n")
	b.WriteString("\t*) echo \"status monitor: $code\" >&2; cat \"$B\" >&2; exit 1 ;;\n\tesac\n")
	b.WriteString("\tWAIT=$(header Retry-After)\ndone\n")
	b.WriteString("RESULT=$(header Location)\necho \"result: $RESULT\"\n")
	b.WriteString("code=$(call \"$RESULT\")\ncat \"$B\"; echo\n[ \"$code\" = 200 ]\n")
	return b.String()
}

func followJS(op Op, in FollowInput) string {
	var b strings.Builder
	for _, l := range followIntro {
		b.WriteString("// " + l + "\n")
	}
	b.WriteString("// Node 18 or later: save it as follow.mjs and run node follow.mjs.\n")
	fmt.Fprintf(&b, "const url = %s;\n", jsString(in.URL))
	auth := "{}"
	if h, ok := op.authHeader(); ok {
		key := "process.env." + op.Auth.env()
		if in.Key != "" {
			key = jsString(in.Key)
		}
		fmt.Fprintf(&b, "const key = %s;\n", key)
		auth = fmt.Sprintf("{ %s: %s + key }", jsString(h), jsString(op.authPrefix()))
	}
	fmt.Fprintf(&b, "const auth = %s;\n", auth)
	b.WriteString("const sleep = (s) => new Promise((ok) => setTimeout(ok, s * 1000));\n")
	b.WriteString("const retryAfter = (res) => Number(res.headers.get(\"Retry-After\")) || 1;\n\n")
	b.WriteString("let res = await fetch(url, {\n")
	fmt.Fprintf(&b, "  method: %s,\n", jsString(op.method()))
	b.WriteString("  headers: {\n    ...auth,\n")
	b.WriteString("    // A new key for each job; send the same one again to retry safely.\n")
	b.WriteString("    \"Idempotency-Key\": crypto.randomUUID(),\n")
	for _, h := range op.Headers {
		fmt.Fprintf(&b, "    %s: %s,\n", jsString(h.Name), jsString(h.Value))
	}
	if in.Body != "" {
		fmt.Fprintf(&b, "    \"Content-Type\": %s,\n", jsString(op.contentType()))
	}
	b.WriteString("  },\n")
	if in.Body != "" {
		fmt.Fprintf(&b, "  body: %s,\n", jsString(in.Body))
	}
	b.WriteString("});\nconsole.log(res.status, await res.text());\n")
	b.WriteString("if (res.status !== 202) throw new Error(\"not accepted\");\n")
	b.WriteString("const monitor = new URL(res.headers.get(\"Location\"), url);\n")
	b.WriteString("let wait = retryAfter(res);\n")
	b.WriteString("for (;;) {\n  await sleep(wait);\n")
	b.WriteString("  res = await fetch(monitor, { headers: auth }); // follows the 303 to the result\n")
	b.WriteString("  if (res.redirected) {\n    console.log(\"result:\", res.url);\n    console.log(await res.text());\n    break;\n  }\n")
	b.WriteString("  if (res.status === 200) {\n    const job = await res.json();\n    console.log(\"job\", job.status, job.percent_complete ?? \"\");\n")
	b.WriteString("    if ([\"succeeded\", \"failed\", \"canceled\"].includes(job.status)) {\n      console.log(job);\n")
	b.WriteString("      if (job.status !== \"succeeded\") throw new Error(\"job \" + job.status);\n      break;\n    }\n")
	b.WriteString("  } else if (res.status !== 429 && res.status !== 503) {\n")
	b.WriteString("    throw new Error(\"status monitor: \" + res.status + \" \" + (await res.text()));\n  }\n")
	b.WriteString("  wait = retryAfter(res);\n}\n")
	return b.String()
}

func followPython(op Op, in FollowInput) string {
	var b strings.Builder
	for _, l := range followIntro {
		b.WriteString("# " + l + "\n")
	}
	imports := "import json\n"
	if op.Auth != nil && in.Key == "" {
		imports += "import os\n"
	}
	imports += "import time\nimport urllib.error\nimport urllib.parse\nimport urllib.request\nimport uuid\n\n"
	b.WriteString(imports)
	fmt.Fprintf(&b, "URL = %s\n", jsString(in.URL))
	auth := "{}"
	if h, ok := op.authHeader(); ok {
		key := "os.environ[" + jsString(op.Auth.env()) + "]"
		if in.Key != "" {
			key = jsString(in.Key)
		}
		fmt.Fprintf(&b, "KEY = %s\n", key)
		auth = fmt.Sprintf("{%s: %s + KEY}", jsString(h), jsString(op.authPrefix()))
	}
	if in.Body != "" {
		fmt.Fprintf(&b, "BODY = %s\n", jsString(in.Body))
	}
	fmt.Fprintf(&b, "AUTH = %s\n\n", auth)
	b.WriteString("# A new Idempotency-Key for each job; send the same one again to retry safely.\n")
	b.WriteString("headers = {**AUTH, \"Idempotency-Key\": str(uuid.uuid4())")
	for _, h := range op.Headers {
		fmt.Fprintf(&b, ", %s: %s", jsString(h.Name), jsString(h.Value))
	}
	data := "None"
	if in.Body != "" {
		fmt.Fprintf(&b, ", \"Content-Type\": %s", jsString(op.contentType()))
		data = "BODY.encode()"
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "req = urllib.request.Request(URL, data=%s, method=%s, headers=headers)\n", data, jsString(op.method()))
	b.WriteString("with urllib.request.urlopen(req) as res:  # a 4xx or 5xx raises HTTPError\n")
	b.WriteString("    print(res.status, res.read().decode())\n")
	b.WriteString("    monitor = urllib.parse.urljoin(URL, res.headers[\"Location\"])\n")
	b.WriteString("    wait = int(res.headers.get(\"Retry-After\") or 1)\n\n")
	b.WriteString("while True:\n    time.sleep(wait)\n    try:\n")
	b.WriteString("        # urlopen follows the 303 to the result, with the same headers.\n")
	b.WriteString("        with urllib.request.urlopen(urllib.request.Request(monitor, headers=AUTH)) as res:\n")
	b.WriteString("            text = res.read().decode()\n")
	b.WriteString("            if res.url != monitor:\n                print(\"result:\", res.url)\n                print(text)\n                break\n")
	b.WriteString("            job = json.loads(text)\n            print(\"job\", job[\"status\"], job.get(\"percent_complete\", \"\"))\n")
	b.WriteString("            if job[\"status\"] in (\"succeeded\", \"failed\", \"canceled\"):\n")
	b.WriteString("                print(text)\n                if job[\"status\"] != \"succeeded\":\n                    raise SystemExit(1)\n                break\n")
	b.WriteString("            wait = int(res.headers.get(\"Retry-After\") or 1)\n")
	b.WriteString("    except urllib.error.HTTPError as e:\n")
	b.WriteString("        if e.code not in (429, 503):  # busy: wait as Retry-After says\n            raise\n")
	b.WriteString("        wait = int(e.headers.get(\"Retry-After\") or 1)\n")
	return b.String()
}

func followGo(op Op, in FollowInput) string {
	var b strings.Builder
	for _, l := range followIntro {
		b.WriteString("// " + l + "\n")
	}
	b.WriteString("package main\n\nimport (\n\t\"crypto/rand\"\n\t\"encoding/json\"\n\t\"fmt\"\n\t\"io\"\n\t\"log\"\n\t\"net/http\"\n")
	if op.Auth != nil && in.Key == "" {
		b.WriteString("\t\"os\"\n")
	}
	b.WriteString("\t\"strconv\"\n\t\"strings\"\n\t\"time\"\n)\n\n")
	b.WriteString("// do sends a request with the credentials and returns the answer and its body.\n")
	b.WriteString("func do(method, url, body string, header http.Header) (*http.Response, string) {\n")
	b.WriteString("\treq, err := http.NewRequest(method, url, strings.NewReader(body))\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n")
	b.WriteString("\tfor k, v := range header {\n\t\treq.Header[k] = v\n\t}\n")
	if h, ok := op.authHeader(); ok {
		key := "os.Getenv(" + strconv.Quote(op.Auth.env()) + ")"
		if in.Key != "" {
			key = strconv.Quote(in.Key)
		}
		fmt.Fprintf(&b, "\treq.Header.Set(%s, %s+%s)\n", strconv.Quote(h), strconv.Quote(op.authPrefix()), key)
	}
	b.WriteString("\tres, err := http.DefaultClient.Do(req) // follows a 303 to the result\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n")
	b.WriteString("\tdefer res.Body.Close()\n\tdata, err := io.ReadAll(res.Body)\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\treturn res, string(data)\n}\n\n")
	b.WriteString("func retryAfter(res *http.Response) time.Duration {\n\ts, err := strconv.Atoi(res.Header.Get(\"Retry-After\"))\n")
	b.WriteString("\tif err != nil || s < 1 {\n\t\ts = 1\n\t}\n\treturn time.Duration(s) * time.Second\n}\n\n")
	b.WriteString("func main() {\n")
	fmt.Fprintf(&b, "\turl := %s\n", strconv.Quote(in.URL))
	body := `""`
	if in.Body != "" {
		fmt.Fprintf(&b, "\tbody := %s\n", goString(in.Body))
		body = "body"
	}
	b.WriteString("\t// A new Idempotency-Key for each job (rand.Text: Go 1.24 or later);\n\t// send the same one again to retry safely.\n")
	b.WriteString("\theader := http.Header{\"Idempotency-Key\": {rand.Text()}}\n")
	for _, h := range op.Headers {
		fmt.Fprintf(&b, "\theader.Set(%s, %s)\n", strconv.Quote(h.Name), strconv.Quote(h.Value))
	}
	if in.Body != "" {
		fmt.Fprintf(&b, "\theader.Set(\"Content-Type\", %s)\n", strconv.Quote(op.contentType()))
	}
	method, ok := goMethods[op.method()]
	if !ok {
		method = strconv.Quote(op.method())
	}
	fmt.Fprintf(&b, "\tres, text := do(%s, url, %s, header)\n", method, body)
	b.WriteString("\tfmt.Println(res.Status, text)\n\tif res.StatusCode != http.StatusAccepted {\n\t\tlog.Fatal(\"not accepted\")\n\t}\n")
	b.WriteString("\tmonitor, err := res.Request.URL.Parse(res.Header.Get(\"Location\"))\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n")
	b.WriteString("\twait := retryAfter(res)\n\tfor {\n\t\ttime.Sleep(wait)\n")
	b.WriteString("\t\tres, text := do(http.MethodGet, monitor.String(), \"\", nil)\n")
	b.WriteString("\t\tif res.Request.URL.String() != monitor.String() {\n\t\t\tfmt.Println(\"result:\", res.Request.URL)\n\t\t\tfmt.Println(text)\n\t\t\treturn\n\t\t}\n")
	b.WriteString("\t\tswitch res.StatusCode {\n\t\tcase http.StatusOK:\n")
	b.WriteString("\t\t\tvar job struct {\n\t\t\t\tStatus string `json:\"status\"`\n\t\t\t}\n")
	b.WriteString("\t\t\tif err := json.Unmarshal([]byte(text), &job); err != nil {\n\t\t\t\tlog.Fatal(err)\n\t\t\t}\n")
	b.WriteString("\t\t\tfmt.Println(\"job\", job.Status)\n")
	b.WriteString("\t\t\tswitch job.Status {\n\t\t\tcase \"succeeded\":\n\t\t\t\tfmt.Println(text)\n\t\t\t\treturn\n")
	b.WriteString("\t\t\tcase \"failed\", \"canceled\":\n\t\t\t\tlog.Fatal(text)\n\t\t\t}\n")
	b.WriteString("\t\tcase http.StatusTooManyRequests, http.StatusServiceUnavailable:\n\t\t\t// busy: wait as Retry-After says\n")
	b.WriteString("\t\tdefault:\n\t\t\tlog.Fatalf(\"status monitor: %s %s\", res.Status, text)\n\t\t}\n")
	b.WriteString("\t\twait = retryAfter(res)\n\t}\n}\n")
	src := b.String()
	if formatted, err := format.Source([]byte(src)); err == nil {
		return string(formatted)
	}
	return src
}
