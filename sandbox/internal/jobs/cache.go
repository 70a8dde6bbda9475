package jobs

import (
	"container/list"
	"sync"
)

// jobCache keeps recent job snapshots for Get, the status monitor's hot
// path, so that a poll reads no database when nothing changed.
//
// Every change of a job is announced (Channel); a snapshot is dropped when
// a newer version is announced, synchronously for this process's own
// writes (after their commit, before their caller answers) and as the
// notification arrives for other processes' writes. On a database one
// process owns (SQLite), every write is this process's own, so a cached
// snapshot is never older than the last committed change. With replicas
// (PostgreSQL), another replica's change reaches this one a moment after
// it committed: a client polling replicas in turn could then see a job go
// back a step, so there only finished jobs are kept, which never change.
// Tombstones are not kept, and Get reads the database again once a
// finished job's retention has passed, when the janitor may change it.
type jobCache struct {
	mu      sync.Mutex
	max     int
	onlyEnd bool // keep only terminal jobs
	entries map[string]*cacheEntry
	lru     *list.List // of ids, most recent first
	evicted uint64     // entries evicted so far
}

type cacheEntry struct {
	job  Job   // zero ID: only a version is known (a change not loaded)
	seen int64 // the newest version announced or loaded
	elem *list.Element
}

func newJobCache(max int, onlyEnd bool) *jobCache {
	return &jobCache{max: max, onlyEnd: onlyEnd, entries: map[string]*cacheEntry{}, lru: list.New()}
}

// get answers a copy of the cached snapshot of id or, when there is none,
// a token to hand put with the snapshot read from the database. The copy
// shares the snapshot's Input and Output bytes (see Job.shared): copying
// them for every poll was most of the memory a poll allocated.
func (c *jobCache) get(id string) (j Job, token uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil || e.job.ID == "" {
		return Job{}, c.evicted, false
	}
	c.lru.MoveToFront(e.elem)
	return e.job.shared(), 0, true
}

// put keeps a snapshot read from the database after get answered token,
// unless a newer version was announced meanwhile (the snapshot is already
// stale), or could have been and its entry evicted since.
func (c *jobCache) put(j Job, token uint64) {
	if c.onlyEnd && !j.Status.Terminal() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[j.ID]
	if (e != nil && e.seen > j.Version) || (e == nil && c.evicted != token) {
		return
	}
	if e == nil {
		e = &cacheEntry{elem: c.lru.PushFront(j.ID)}
		c.entries[j.ID] = e
		c.evict()
	} else {
		c.lru.MoveToFront(e.elem)
	}
	e.job, e.seen = j.Clone(), j.Version
}

// changed drops the snapshot of id older than version, and remembers the
// version, so that a read which started before the change is not kept.
func (c *jobCache) changed(id string, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		e = &cacheEntry{elem: c.lru.PushFront(id)}
		c.entries[id] = e
		c.evict()
	}
	e.seen = max(e.seen, version)
	if e.job.Version < e.seen {
		e.job = Job{}
	}
}

// forget empties the cache: notifications may have been lost.
func (c *jobCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evicted += uint64(len(c.entries))
	clear(c.entries)
	c.lru.Init()
}

// evict drops the least recently used entries beyond max.
func (c *jobCache) evict() {
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(string))
		c.evicted++
	}
}
