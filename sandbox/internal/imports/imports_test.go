package imports

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	r := func(sku string, q int) Row { return Row{SKU: sku, Name: sku, Quantity: q, PriceCents: 100} }
	cases := []struct {
		name     string
		rows     []Row
		imported int
		event    string
		reasons  map[int]string // row → part of its reason
	}{
		{"all imported", []Row{r("A", 1), r("B", 0)}, 2, EventComplete, nil},
		{"duplicate names the first row", []Row{r("A", 1), r("B", 1), r("A", 2)}, 2, EventPartial, map[int]string{3: "duplicate of row 1"}},
		{"discontinued", []Row{r("OLD-1", 1), r("B", 1)}, 1, EventPartial, map[int]string{1: "discontinued"}},
		{"negative quantity", []Row{r("A", -1), r("B", 1)}, 1, EventPartial, map[int]string{1: "below zero"}},
		{"duplicate wins over the other checks", []Row{r("OLD-1", 1), r("OLD-1", -3)}, 0, EventFailed, map[int]string{1: "discontinued", 2: "duplicate of row 1"}},
		{"nothing imported", []Row{r("OLD-1", 1)}, 0, EventFailed, map[int]string{1: "discontinued"}},
		{"no rows", nil, 0, EventFailed, nil},
	}
	for _, c := range cases {
		res := Check(c.rows)
		if res.TotalRows != len(c.rows) || res.Imported != c.imported || res.Event() != c.event || len(res.Rejected) != len(c.reasons) {
			t.Errorf("%s: %+v (event %s)", c.name, res, res.Event())
			continue
		}
		for _, rj := range res.Rejected {
			if !strings.Contains(rj.Reason, c.reasons[rj.Row]) || rj.SKU != c.rows[rj.Row-1].SKU {
				t.Errorf("%s: row %d: %q, want %q", c.name, rj.Row, rj.Reason, c.reasons[rj.Row])
			}
		}
	}
}

func TestSteps(t *testing.T) {
	for n, want := range map[int]int{0: 1, 1: 1, 100: 1, 101: 2, 1000: 10} {
		if got := Steps(n); got != want {
			t.Errorf("Steps(%d) = %d, want %d", n, got, want)
		}
	}
}
