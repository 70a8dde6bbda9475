// Command wirebare is the bare peer of the wire benchmarks (../../wire_bench_test.go): a plain
// net/http server in its own process that answers every request with one recorded answer of the
// sandbox's, the same status, headers and body bytes, so that the benchmarks can say what the
// sandbox costs on top of net/http itself. Its http.Server has the sandbox's timeouts and limits.
//
//	wirebare -addr 127.0.0.1:8081 -answer answer.json
//
// answer.json is {"status": 202, "header": {"Location": ["/v1/jobs/job_…"], …}, "body": "<base64>"};
// Date and Content-Length are left to net/http, as the sandbox leaves them. It serves until killed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// answer is one recorded HTTP answer.
type answer struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "`host:port` to listen on")
	file := flag.String("answer", "", "`file` holding the recorded answer (JSON)")
	flag.Parse()
	if err := run(*addr, *file); err != nil {
		fmt.Fprintln(os.Stderr, "wirebare:", err)
		os.Exit(1)
	}
}

func run(addr, file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if a.Status < 100 || a.Status > 599 {
		return fmt.Errorf("%s: status %d", file, a.Status)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "wirebare: listening on", ln.Addr(), "answering", a.Status, "with", len(a.Body), "bytes")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // the sandbox reads the body too
			h := w.Header()
			for k, v := range a.Header {
				h[k] = v
			}
			w.WriteHeader(a.Status)
			_, _ = w.Write(a.Body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
	}
	return srv.Serve(ln)
}
