package jobs

import (
	"testing"
)

func TestJobCache(t *testing.T) {
	job := func(id string, v int64, s Status) Job { return Job{ID: id, Version: v, Status: s} }

	t.Run("a change drops an older snapshot", func(t *testing.T) {
		c := newJobCache(8, false)
		_, tok, ok := c.get("a")
		if ok {
			t.Fatal("empty cache answered a snapshot")
		}
		c.put(job("a", 1, StatusQueued), tok)
		if j, _, ok := c.get("a"); !ok || j.Version != 1 {
			t.Fatalf("get after put = %v, %v; want version 1", j.Version, ok)
		}
		c.changed("a", 2)
		if _, _, ok := c.get("a"); ok {
			t.Fatal("a snapshot older than an announced change was answered")
		}
	})

	t.Run("a read that began before a change is not kept", func(t *testing.T) {
		c := newJobCache(8, false)
		_, tok, _ := c.get("a")
		c.changed("a", 2) // committed while the read was in flight
		c.put(job("a", 1, StatusQueued), tok)
		if _, _, ok := c.get("a"); ok {
			t.Fatal("a stale read was kept after a newer version was announced")
		}
		_, tok, _ = c.get("a")
		c.put(job("a", 2, StatusProcessing), tok)
		if j, _, ok := c.get("a"); !ok || j.Version != 2 {
			t.Fatalf("get = %v, %v; want version 2", j.Version, ok)
		}
	})

	t.Run("an eviction during a read refuses its snapshot", func(t *testing.T) {
		c := newJobCache(1, false)
		_, tok, _ := c.get("a")
		c.changed("a", 2)
		c.changed("b", 1) // evicts a's entry, and with it the version seen
		c.put(job("a", 1, StatusQueued), tok)
		if _, _, ok := c.get("a"); ok {
			t.Fatal("a read that overlapped an eviction was kept")
		}
	})

	t.Run("only finished jobs when replicas share the database", func(t *testing.T) {
		c := newJobCache(8, true)
		_, tok, _ := c.get("a")
		c.put(job("a", 1, StatusProcessing), tok)
		if _, _, ok := c.get("a"); ok {
			t.Fatal("an unfinished job was cached with onlyEnd")
		}
		c.put(job("a", 3, StatusSucceeded), tok)
		if _, _, ok := c.get("a"); !ok {
			t.Fatal("a finished job was not cached")
		}
	})

	t.Run("forget and least recently used", func(t *testing.T) {
		c := newJobCache(2, false)
		for _, id := range []string{"a", "b"} {
			_, tok, _ := c.get(id)
			c.put(job(id, 1, StatusQueued), tok)
		}
		c.get("a") // a is now the most recent
		_, tok, _ := c.get("c")
		c.put(job("c", 1, StatusQueued), tok)
		if _, _, ok := c.get("b"); ok {
			t.Fatal("the least recently used entry survived")
		}
		if _, _, ok := c.get("a"); !ok {
			t.Fatal("a recently used entry was evicted")
		}
		c.forget()
		if _, _, ok := c.get("a"); ok {
			t.Fatal("forget kept an entry")
		}
	})

	t.Run("snapshots are copies that share their bytes read-only", func(t *testing.T) {
		c := newJobCache(2, false)
		_, tok, _ := c.get("a")
		j := job("a", 1, StatusFailed)
		j.Output = []byte(`{"n":1}`)
		j.Failure = &Failure{Code: "upstream_unavailable"}
		c.put(j, tok)
		j.Output[0] = 'X' // the caller's own bytes: put kept a copy
		got, _, _ := c.get("a")
		got.Output = append(got.Output, '!')
		got.Failure.Code = "changed"
		again, _, _ := c.get("a")
		if string(again.Output) != `{"n":1}` || again.Failure.Code != "upstream_unavailable" {
			t.Fatalf("a caller changed the cached snapshot: %s, %s", again.Output, again.Failure.Code)
		}
	})
}
