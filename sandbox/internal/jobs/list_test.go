package jobs_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// TestList checks an owner's job list on every backend: newest first,
// other owners' jobs never in it, each filter, expired jobs left out, and
// pages that neither repeat nor skip a job while new ones are accepted.
func TestList(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{})
		ctx := context.Background()
		ok := v.submit(ownerA, kindOK, plan(1, 0))
		failed := v.submit(ownerA, kindFail, plan(1, 0))
		running := v.submit(ownerA, kindOK, plan(1, time.Hour))
		canceled := v.submit(ownerA, kindOK, plan(1, time.Hour))
		expired := v.submit(ownerA, kindOK, plan(1, 0))
		other := v.submit(ownerB, kindOK, plan(1, 0))
		v.terminal(ownerA, ok.ID)
		v.terminal(ownerA, failed.ID)
		v.terminal(ownerA, expired.ID)
		v.terminal(ownerB, other.ID)
		if _, err := v.e.Cancel(ctx, ownerA, canceled.ID); err != nil {
			t.Fatal(err)
		}
		// Past its retention: its monitor answers 410, so it is not listed.
		exec(t, v.db, `UPDATE jobs SET expires_at = 1 WHERE id = ?`, expired.ID)

		list := func(q jobs.ListQuery) ([]string, bool) {
			t.Helper()
			q.Owner = cmpOr(q.Owner, ownerA)
			if q.Limit == 0 {
				q.Limit = jobs.MaxListLimit
			}
			page, more, err := v.e.List(ctx, q)
			if err != nil {
				t.Fatalf("List %+v: %v", q, err)
			}
			ids := make([]string, len(page))
			for i, j := range page {
				if j.Owner != q.Owner {
					t.Errorf("List for %s answered %s's job %s", q.Owner, j.Owner, j.ID)
				}
				ids[i] = j.ID
			}
			return ids, more
		}
		name := map[string]string{ok.ID: "ok", failed.ID: "failed", running.ID: "running", canceled.ID: "canceled", expired.ID: "expired", other.ID: "other"}
		names := func(ids []string) string {
			var s []string
			for _, id := range ids {
				s = append(s, cmpOr(name[id], id))
			}
			return strings.Join(s, ",")
		}
		for _, c := range []struct {
			what string
			q    jobs.ListQuery
			want []string
		}{
			{"all, newest first", jobs.ListQuery{}, []string{canceled.ID, running.ID, failed.ID, ok.ID}},
			{"another owner", jobs.ListQuery{Owner: ownerB}, []string{other.ID}},
			{"nobody's", jobs.ListQuery{Owner: "key_nobody"}, []string{}},
			{"failed", jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusFailed}}, []string{failed.ID}},
			{"succeeded or canceled", jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusSucceeded, jobs.StatusCanceled}}, []string{canceled.ID, ok.ID}},
			{"unfinished", jobs.ListQuery{Statuses: []jobs.Status{jobs.StatusQueued, jobs.StatusProcessing}}, []string{running.ID}},
			{"kind", jobs.ListQuery{Kinds: []jobs.Kind{kindFail}}, []string{failed.ID}},
			{"kind and status", jobs.ListQuery{Kinds: []jobs.Kind{kindOK}, Statuses: []jobs.Status{jobs.StatusFailed}}, []string{}},
			{"kind without jobs", jobs.ListQuery{Kinds: []jobs.Kind{kindPanic}}, []string{}},
		} {
			got, more := list(c.q)
			if !slices.Equal(got, c.want) || more {
				t.Errorf("%s: %s (more %v), want %s", c.what, names(got), more, names(c.want))
			}
		}

		// One job a page, with a job accepted between pages: every job
		// that was there is seen once, in order, and the new one (newer
		// than all of them) on no later page.
		var seen []string
		after := jobs.Cursor{}
		for range 10 {
			page, more, err := v.e.List(ctx, jobs.ListQuery{Owner: ownerA, After: after, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range page {
				seen = append(seen, j.ID)
				after = jobs.CursorOf(j)
			}
			v.submit(ownerA, kindOK, plan(1, time.Hour))
			if !more {
				break
			}
		}
		if want := []string{canceled.ID, running.ID, failed.ID, ok.ID}; !slices.Equal(seen, want) {
			t.Errorf("paged one at a time while jobs were accepted: %s, want %s", names(seen), names(want))
		}

		for _, q := range []jobs.ListQuery{{Owner: ownerA, Limit: 0}, {Owner: ownerA, Limit: jobs.MaxListLimit + 1}, {Limit: 1},
			{Owner: ownerA, Limit: 1, Statuses: []jobs.Status{"done"}}} {
			if _, _, err := v.e.List(ctx, q); err == nil {
				t.Errorf("List %+v: no error", q)
			}
		}
	})
}
