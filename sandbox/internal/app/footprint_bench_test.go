package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkWireFootprint measures what a visitor costs the sandbox binary
// (SQLite, over loopback): resident memory and disk per API key, per inbox
// holding 10 deliveries of 1 KiB, and the largest problem a request body can
// make it answer. Run it with make bench-wire-footprint.
func BenchmarkWireFootprint(b *testing.B) {
	wireRequested(b)
	const nKeys, nInboxes, perInbox = 10000, 1000, 10
	database := filepath.Join(b.TempDir(), "sandbox.db")
	s := wireServe(b, "sqlite", database, "-max-keys", "1000000")
	time.Sleep(time.Second)
	rss0, _ := wireRSS(b, s.proc.pid())
	disk0 := wireDiskSize(b, "sqlite", database)

	keys := wireKeys(b, s, nKeys)
	time.Sleep(2 * time.Second)
	rss1, _ := wireRSS(b, s.proc.pid())
	disk1 := wireDiskSize(b, "sqlite", database)
	b.ReportMetric(float64(rss1-rss0)/nKeys, "rss-B/key")
	b.ReportMetric(float64(disk1-disk0)/nKeys, "disk-B/key")

	delivery := bytes.Repeat([]byte("x"), 1000)
	delivery = []byte(fmt.Sprintf(`{"type":"import.complete","data":{"pad":%q}}`, delivery))
	var wg sync.WaitGroup
	errs := make(chan error, nInboxes)
	sem := make(chan struct{}, wireConns)
	for i := range nInboxes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := wireInboxWithDeliveries(s, keys[i], delivery, perInbox); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	rss2, _ := wireRSS(b, s.proc.pid())
	disk2 := wireDiskSize(b, "sqlite", database)
	b.ReportMetric(float64(rss2-rss1)/nInboxes, "rss-B/inbox")
	b.ReportMetric(float64(disk2-disk1)/nInboxes, "disk-B/inbox")

	// The largest problem: bodies at the 64 KiB limit built to make as many
	// errors, and errors as large, as they can.
	var largest int
	for name, body := range footprintBodies(64 << 10) {
		status, _, answer := s.do(b, http.MethodPost, "/v1/reports", keys[0], body)
		b.Logf("%s (%d B): %d, %d B answered", name, len(body), status, len(answer))
		if status < 400 || status >= 500 {
			b.Fatalf("%s: answered %d, want a 4xx problem", name, status)
		}
		largest = max(largest, len(answer))
	}
	b.ReportMetric(float64(largest), "largest-problem-B")
}

// footprintBodies are request bodies of at most limit bytes meant to make
// the largest problems: many unknown fields, many long unknown strings,
// deep nesting, and every field of the wrong type.
func footprintBodies(limit int) map[string]string {
	fill := func(open string, item func(i int) string, closing string) string {
		var sb strings.Builder
		sb.WriteString(open)
		for i := 0; ; i++ {
			it := item(i)
			if sb.Len()+len(it)+len(closing)+1 > limit {
				break
			}
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(it)
		}
		sb.WriteString(closing)
		return sb.String()
	}
	return map[string]string{
		"unknown fields": fill(`{`, func(i int) string { return fmt.Sprintf(`"f%d":0`, i) }, `}`),
		"long unknown strings": fill(`{`, func(i int) string {
			return fmt.Sprintf(`"f%d":"%s"`, i, strings.Repeat("y", 900))
		}, `}`),
		"nested objects": strings.Repeat(`{"a":`, 2000) + `0` + strings.Repeat(`}`, 2000),
		"wrong types":    `{"title":` + `[` + strings.Repeat(`{"x":1},`, 6000) + `{}]` + `,"from":1,"to":true,"simulate":"no"}`,
	}
}

// wireInboxWithDeliveries creates an inbox for key and posts n deliveries to it.
func wireInboxWithDeliveries(s *wireSandbox, key string, delivery []byte, n int) error {
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/sandbox/inboxes", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("creating an inbox: %w", err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	var in struct{ URL string }
	if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &in) != nil {
		return fmt.Errorf("creating an inbox: %s %s", res.Status, body)
	}
	for range n {
		res, err := s.hc.Post(in.URL, "application/json", bytes.NewReader(delivery))
		if err != nil {
			return fmt.Errorf("delivering to %s: %w", in.URL, err)
		}
		answer, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("delivering to %s: %s %s", in.URL, res.Status, answer)
		}
	}
	return nil
}
