// Package dataset is the sandbox's make-believe shop: deterministic daily and
// hourly sales figures that reports and exports are built from.
//
// The same date always gives the same numbers, so a report run twice matches,
// an export's file can be produced again on download instead of being stored,
// and tests can assert exact totals.
package dataset

import (
	"encoding/binary"
	"hash/fnv"
	"time"
)

// Regions the shop sells in.
var regions = [...]string{"eu-west", "us-east", "ap-south"}

// Regions returns the regions in a fixed order.
func Regions() []string { return regions[:] }

// Sales is one period's figures for one region.
type Sales struct {
	At           time.Time
	Region       string
	Orders       int
	RevenueCents int64
	Refunds      int
}

func mix(parts ...uint64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(b[:], p)
		h.Write(b[:])
	}
	return h.Sum64()
}

// Hour returns the sales of one region in the hour starting at t (UTC).
func Hour(t time.Time, region int) Sales {
	t = t.UTC().Truncate(time.Hour)
	r := mix(uint64(t.Unix()), uint64(region))
	// Busier in the afternoon and at weekends, so charts have a shape.
	base := 4 + int(r%7)
	if h := t.Hour(); h >= 12 && h <= 20 {
		base += 6
	}
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		base += 3
	}
	orders := base
	avg := int64(2500 + (r>>8)%4000) // 25.00 to 65.00 per order
	refunds := int((r >> 20) % 3)
	if refunds > orders {
		refunds = orders
	}
	return Sales{At: t, Region: regions[region], Orders: orders, RevenueCents: int64(orders) * avg, Refunds: refunds}
}

// Day returns the sales of one region on the day starting at d (UTC).
func Day(d time.Time, region int) Sales {
	d = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	total := Sales{At: d, Region: regions[region]}
	for h := 0; h < 24; h++ {
		s := Hour(d.Add(time.Duration(h)*time.Hour), region)
		total.Orders += s.Orders
		total.RevenueCents += s.RevenueCents
		total.Refunds += s.Refunds
	}
	return total
}
