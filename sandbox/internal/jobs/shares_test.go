package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// submitAs submits a short job for owner in network.
func (v *env) submitAs(owner, network string, p jobs.Plan) (jobs.Job, error) {
	return v.e.Submit(context.Background(), jobs.Spec{Kind: kindOK, Owner: owner, Network: network, Input: []byte(`{}`), Plan: p})
}

// shareOf answers the share a refusal names, and its limit.
func shareOf(err error) (limit int, share error) {
	var se *jobs.ShareError
	if !errors.As(err, &se) {
		return 0, err
	}
	return se.Limit, se.Err
}

func networkUnfinished(t testing.TB, v *env, network string) int {
	t.Helper()
	return count(t, v.db, `SELECT COALESCE(SUM(unfinished), 0) FROM job_networks WHERE network = ?`, network)
}

// TestNetworkShare: the keys of one network hold at most
// MaxUnfinishedPerNetwork unfinished jobs together, exactly, even when
// Submits race; a fresh key from that network is refused with
// ErrNetworkBusy naming the share, a newcomer from another network is
// served, and an end frees a place.
func TestNetworkShare(t *testing.T) {
	t.Parallel()
	const share = 3
	cfg := func(c *jobs.Config) { c.MaxUnfinishedPerNetwork, c.MaxUnfinishedPerOwner, c.QueueSize = share, 10, 100 }
	t.Run("sequential", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true, config: cfg})
		var first jobs.Job
		for i := range share {
			j, err := v.submitAs(fmt.Sprint("key_flood_", i), "203.0.113.0/24", plan(1, 0))
			if err != nil {
				t.Fatalf("job %d of the network: %v", i+1, err)
			}
			if i == 0 {
				first = j
			}
		}
		_, err := v.submitAs("key_flood_fresh", "203.0.113.0/24", plan(1, 0))
		if limit, got := shareOf(err); !errors.Is(got, jobs.ErrNetworkBusy) || limit != share {
			t.Fatalf("a fresh key of a network at its share: %v, want ErrNetworkBusy with limit %d", err, share)
		}
		if _, err := v.submitAs("key_newcomer", "198.51.100.0/24", plan(1, 0)); err != nil {
			t.Fatalf("a newcomer from another network: %v", err)
		}
		if n := networkUnfinished(t, v, "203.0.113.0/24"); n != share {
			t.Fatalf("the network counts %d unfinished jobs, want %d", n, share)
		}
		if _, err := v.e.Cancel(context.Background(), "key_flood_0", first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := v.submitAs("key_flood_fresh", "203.0.113.0/24", plan(1, 0)); err != nil {
			t.Fatalf("after a cancel freed a place: %v", err)
		}
		// Recover finds the counts right, and fixes a wrong one.
		exec(t, v.db, `UPDATE job_networks SET unfinished = 0`)
		if err := v.e.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := networkUnfinished(t, v, "203.0.113.0/24"); n != share {
			t.Fatalf("after Recover the network counts %d, want %d", n, share)
		}
	}))
	t.Run("concurrent", each(func(t *testing.T, b dbtest.Backend) {
		const burst = 32
		v := newEnv(t, b, setup{idle: true, config: cfg})
		var (
			mu             sync.Mutex
			accepted, busy int
			wg             sync.WaitGroup
			start          = make(chan struct{})
		)
		for i := range burst {
			wg.Go(func() {
				<-start
				_, err := v.submitAs(fmt.Sprint("key_", i), "203.0.113.0/24", plan(1, 0))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case errors.Is(err, jobs.ErrNetworkBusy):
					busy++
				default:
					t.Errorf("Submit: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if accepted != share || busy != burst-share {
			t.Fatalf("%d keys of one network at once, share %d: %d accepted, %d refused", burst, share, accepted, busy)
		}
		if n, u := count(t, v.db, `SELECT COUNT(*) FROM jobs`), networkUnfinished(t, v, "203.0.113.0/24"); n != share || u != share {
			t.Errorf("%d jobs stored, the network counts %d; want %d", n, u, share)
		}
	}))
}

// TestFullQueueAdmitsNewcomers: when one visitor has filled the queue, its
// next job is refused (queue_full) but a newcomer's first jobs are still
// admitted, into a reserve: up to GuaranteedPerOwner per key and
// GuaranteedPerNetwork per network. The reserve itself is bounded: the
// queue never holds more than QueueSize + Reserve.
func TestFullQueueAdmitsNewcomers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		const queue, reserve, perKey, perNet = 20, 5, 2, 3
		v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) {
			c.QueueSize, c.Reserve, c.GuaranteedPerOwner, c.GuaranteedPerNetwork = queue, reserve, perKey, perNet
			c.MaxUnfinishedPerNetwork, c.MaxUnfinishedPerOwner = 100, 100
		}})
		for i := range queue {
			if _, err := v.submitAs("key_flood", "203.0.113.0/24", plan(1, 0)); err != nil {
				t.Fatalf("flood job %d: %v", i+1, err)
			}
		}
		refused := func(owner, network, what string) {
			t.Helper()
			_, err := v.submitAs(owner, network, plan(1, 0))
			if _, got := shareOf(err); !errors.Is(got, jobs.ErrQueueFull) {
				t.Fatalf("%s: %v, want ErrQueueFull", what, err)
			}
		}
		admitted := func(owner, network, what string) {
			t.Helper()
			if _, err := v.submitAs(owner, network, plan(1, 0)); err != nil {
				t.Fatalf("%s: %v, want admitted to the full queue", what, err)
			}
		}
		refused("key_flood", "203.0.113.0/24", "the flooder's next job")
		refused("key_flood_fresh", "203.0.113.0/24", "a fresh key of the flooding network")
		admitted("key_newcomer", "198.51.100.0/24", "a newcomer's first job")
		admitted("key_newcomer", "198.51.100.0/24", "a newcomer's second job")
		refused("key_newcomer", "198.51.100.0/24", "a newcomer's third job (beyond its guaranteed 2)")
		admitted("key_neighbour", "198.51.100.0/24", "a second key of the newcomer's network")
		refused("key_neighbour_2", "198.51.100.0/24", "a third key of that network (beyond its guaranteed 3)")
		admitted("key_a", "192.0.2.0/24", "another network's first job")
		admitted("key_b", "100.64.0.0/24", "another network's first job")
		refused("key_c", "100.64.1.0/24", "a light newcomer once the reserve is used up")
		waitFor(t, "the counts to settle", func() (bool, string) {
			st, err := v.e.Stats(context.Background())
			return err == nil && st.Queued == queue+reserve, fmt.Sprintf("%+v %v", st, err)
		})
		if n := count(t, v.db, `SELECT COUNT(*) FROM jobs`); n != queue+reserve {
			t.Errorf("%d jobs stored, want the queue (%d) and its reserve (%d)", n, queue, reserve)
		}
	})
}

// riverPriority answers the River priority of job id's River job.
func riverPriority(t testing.TB, v *env, id string) int {
	t.Helper()
	return count(t, v.db, `SELECT priority FROM river_job WHERE id = ?`, riverID(t, v.db, id))
}

// TestPriorityByLoad: a job's River priority follows its owner's (and its
// network's) unfinished jobs when it is queued: the guaranteed share runs
// at 1, a heavy owner's work at 2 to 4; a requeued job is ranked again.
func TestPriorityByLoad(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) {
			c.QueueSize, c.MaxUnfinishedPerOwner, c.MaxUnfinishedPerNetwork, c.GuaranteedPerOwner, c.GuaranteedPerNetwork = 1000, 1000, 1000, 2, 4
		}})
		var heavy []jobs.Job
		for range 25 {
			j, err := v.submitAs(ownerA, "203.0.113.0/24", plan(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			heavy = append(heavy, j)
		}
		var got []int
		for _, j := range heavy {
			got = append(got, riverPriority(t, v, j.ID))
		}
		// Owner: ≤2 → 1, ≤20 → 2, ≤200 → 3; network: ≤4 → 1, ≤40 → 2.
		want := []int{1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("priorities of one owner's 25 jobs: %v, want %v", got, want)
		}
		newcomer, err := v.submitAs(ownerB, "198.51.100.0/24", plan(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		if p := riverPriority(t, v, newcomer.ID); p != 1 {
			t.Errorf("a newcomer's job has priority %d, want 1", p)
		}
		// A light job whose River job is gone is requeued at its owner's
		// load now.
		exec(t, v.db, `DELETE FROM river_job WHERE id = ?`, riverID(t, v.db, heavy[0].ID))
		if err := v.e.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		if p := riverPriority(t, v, heavy[0].ID); p != 3 {
			t.Errorf("a requeued job of an owner with 25 unfinished: priority %d, want 3", p)
		}
	})
}

// TestNewcomerRunsFirst measures from where a newcomer stands: one key has
// flooded the queue with long jobs whose steps are always due (far more
// than the workers can run), and a newcomer's job still runs its first
// step within a budget, while the flooder's own next job waits its turn.
func TestNewcomerRunsFirst(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		const flood, workers = 200, 2
		v := newEnv(t, b, setup{workers: workers, config: func(c *jobs.Config) {
			c.QueueSize, c.MaxUnfinishedPerOwner, c.MaxUnfinishedPerNetwork = 10_000, 10_000, 10_000
		}})
		idle := time.Now()
		calm, err := v.submitAs("key_calm", "192.0.2.0/24", plan(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		v.waitJob("key_calm", calm.ID, "its first step", atStep(1))
		t.Logf("%s: on an idle queue a job's first step came after %v", b.Name, time.Since(idle).Round(time.Millisecond))
		// Steps every 30 ms, longer than InlineWait: each step is a snooze
		// and a fresh fetch, so the flood keeps ~200 River jobs due.
		for range flood {
			if _, err := v.submitAs(ownerA, "203.0.113.0/24", plan(10_000, 30*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the flood to keep more steps due than there are workers", func() (bool, string) {
			n := count(t, v.db, `SELECT COUNT(*) FROM river_job WHERE state = 'available' AND kind = ?`, riverRunKind)
			return n > 10*workers, fmt.Sprintf("%d River jobs available", n)
		})
		// The flooder's own next job is queued first; then, one at a time,
		// five newcomers' jobs.
		flooders, err := v.submitAs(ownerA, "203.0.113.0/24", plan(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		stepsBefore, clockBefore := count(t, v.db, `SELECT COALESCE(SUM(step), 0) FROM jobs WHERE owner = ?`, ownerA), time.Now()
		var took []time.Duration
		for i := range 5 {
			start := time.Now()
			j, err := v.submitAs(fmt.Sprint("key_newcomer_", i), fmt.Sprint("198.51.100.", i), plan(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a newcomer's first step", func() (bool, string) {
				step := count(t, v.db, `SELECT step FROM jobs WHERE id = ?`, j.ID)
				return step >= 1, fmt.Sprintf("step %d, River job %s, priority %d", step, riverState(t, v.db, riverID(t, v.db, j.ID)), riverPriority(t, v, j.ID))
			})
			took = append(took, time.Since(start))
		}
		flooderStep := count(t, v.db, `SELECT step FROM jobs WHERE id = ?`, flooders.ID)
		// Were River first in, first out, a newcomer would wait for every
		// step due before it: about the flood over the step rate.
		rate := float64(count(t, v.db, `SELECT COALESCE(SUM(step), 0) FROM jobs WHERE owner = ?`, ownerA)-stepsBefore) / time.Since(clockBefore).Seconds()
		t.Logf("%s: the flood runs %.0f steps/s; first in, first out, a newcomer would wait about %v for the %d jobs due before it",
			b.Name, rate, time.Duration(float64(flood)/rate*float64(time.Second)).Round(time.Millisecond), flood)
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		t.Logf("%s: %d jobs of one key keep %d workers busy; a newcomer's first step came after %v (median of 5, max %v), "+
			"while the flooder's own next job, queued before them at priority %d, had run %d steps",
			b.Name, flood, workers, took[2].Round(time.Millisecond), took[4].Round(time.Millisecond), riverPriority(t, v, flooders.ID), flooderStep)
		// River polls for work every pollEvery (100 ms on SQLite, 20 ms on
		// PostgreSQL) when nothing wakes it: a newcomer waits for a few
		// polls (it shares priority 1 with the flooder's first five jobs,
		// queued while it was light), not for the flood. -race makes each
		// step several times slower.
		const budget = 3 * time.Second
		if took[2] > budget {
			t.Errorf("a newcomer's first step took %v (median of 5) behind a flood, budget %v", took[2], budget)
		}
		if flooderStep != 0 {
			t.Errorf("the flooder's own next job ran before the newcomers' (step %d)", flooderStep)
		}
	})
}
