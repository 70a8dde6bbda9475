package app

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
)

// ---- Fair shares: what one visitor (a key, a network) may hold ----

// FairShares are the per-network shares and the expiries that keep one
// visitor from taking the sandbox from the others (README, "Fair
// shares"). A network is a client's /24 (IPv4) or /64 (IPv6). A zero
// field takes the default its flag shows.
type FairShares struct {
	// KeysPerNetwork bounds the API keys of one network: past it, minting
	// evicts that network's least recently used key without work.
	KeysPerNetwork int
	// KeyTTL is how long a key may go unused before it is deleted.
	KeyTTL time.Duration
	// JobsPerNetwork bounds the unfinished jobs of one network's keys
	// (0: a fifth of -queue-size).
	JobsPerNetwork int
	// GuaranteedJobs: a key with fewer unfinished jobs is admitted even
	// to a full queue (into a reserve of a tenth of it), when its network
	// has fewer than four times as many.
	GuaranteedJobs int
	// WebhooksPerNetwork bounds the webhooks still being delivered for one
	// network's keys.
	WebhooksPerNetwork int
	// WebhookWorkersPerEndpoint and WebhookWorkersPerNetwork bound the
	// delivery attempts under way at once on a replica to one receiving
	// host, and for one network's keys.
	WebhookWorkersPerEndpoint, WebhookWorkersPerNetwork int
	// InboxBytes is the byte budget of every inbox's stored deliveries.
	InboxBytes int64
	// InboxTTL is how long an inbox may receive nothing before it expires.
	InboxTTL time.Duration
	// InboxRate and InboxNetworkRate limit deliveries posted to one inbox,
	// and by one network to all inboxes (the sandbox's own are not).
	InboxRate, InboxNetworkRate Rate
	// StreamsPerNetwork and StreamsTotal bound the event streams open at
	// once on a replica for one network's keys, and for all.
	StreamsPerNetwork, StreamsTotal int
}

// Defaults of FairShares, which the flags show.
var defaultShares = FairShares{
	KeysPerNetwork: keys.DefaultMaxPerNetwork, KeyTTL: keys.DefaultTTL,
	GuaranteedJobs: 5, WebhooksPerNetwork: 2000,
	WebhookWorkersPerEndpoint: 4, WebhookWorkersPerNetwork: 8,
	InboxBytes: inbox.DefaultMaxBytes, InboxTTL: inbox.DefaultTTL,
	InboxRate: Rate{PerSecond: 2, Burst: 20}, InboxNetworkRate: Rate{PerSecond: 5, Burst: 50},
	StreamsPerNetwork: 100, StreamsTotal: 5000,
}

// withDefaults fills in the zero fields; JobsPerNetwork stays 0 (the job
// engine takes a fifth of its queue).
func (f FairShares) withDefaults() FairShares {
	d := defaultShares
	or := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	or(&f.KeysPerNetwork, d.KeysPerNetwork)
	or(&f.GuaranteedJobs, d.GuaranteedJobs)
	or(&f.WebhooksPerNetwork, d.WebhooksPerNetwork)
	or(&f.WebhookWorkersPerEndpoint, d.WebhookWorkersPerEndpoint)
	or(&f.WebhookWorkersPerNetwork, d.WebhookWorkersPerNetwork)
	or(&f.StreamsPerNetwork, d.StreamsPerNetwork)
	or(&f.StreamsTotal, d.StreamsTotal)
	if f.KeyTTL == 0 {
		f.KeyTTL = d.KeyTTL
	}
	if f.InboxTTL == 0 {
		f.InboxTTL = d.InboxTTL
	}
	if f.InboxBytes == 0 {
		f.InboxBytes = d.InboxBytes
	}
	if f.InboxRate == (Rate{}) {
		f.InboxRate = d.InboxRate
	}
	if f.InboxNetworkRate == (Rate{}) {
		f.InboxNetworkRate = d.InboxNetworkRate
	}
	return f
}

// validate reports shares that cannot work, with what to change.
func (c Config) validateShares() error {
	f := c.Shares
	var errs []error
	if f.KeysPerNetwork < 0 || f.GuaranteedJobs < 0 || f.WebhooksPerNetwork < 0 || f.WebhookWorkersPerEndpoint < 0 ||
		f.WebhookWorkersPerNetwork < 0 || f.StreamsPerNetwork < 0 || f.StreamsTotal < 0 || f.JobsPerNetwork < 0 || f.InboxBytes < 0 {
		errs = append(errs, errors.New("-max-keys-per-network, -max-jobs-per-network, -guaranteed-jobs, -max-webhooks-per-network, -webhook-workers-per-endpoint, "+
			"-webhook-workers-per-network, -inbox-bytes, -max-streams-per-network and -max-streams-total must not be negative"))
	}
	if f.JobsPerNetwork > c.QueueSize {
		errs = append(errs, fmt.Errorf("-max-jobs-per-network %d: must be at most -queue-size (%d), or 0 for a fifth of it", f.JobsPerNetwork, c.QueueSize))
	}
	if f.GuaranteedJobs > c.MaxJobsPerKey && c.MaxJobsPerKey > 0 {
		errs = append(errs, fmt.Errorf("-guaranteed-jobs %d: must be at most -max-jobs-per-key (%d)", f.GuaranteedJobs, c.MaxJobsPerKey))
	}
	if f.KeyTTL != 0 && f.KeyTTL < time.Minute {
		errs = append(errs, fmt.Errorf("-key-ttl %s: must be at least 1m (a key's use is recorded once a minute)", f.KeyTTL))
	}
	if f.InboxTTL != 0 && f.InboxTTL < time.Minute {
		errs = append(errs, fmt.Errorf("-inbox-ttl %s: must be at least 1m", f.InboxTTL))
	}
	if f.InboxBytes != 0 && f.InboxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("-inbox-bytes %d: must be at least 1MiB (one inbox alone may hold 100 deliveries of 64 KiB)", f.InboxBytes))
	}
	if n := f.withDefaults().WebhookWorkersPerEndpoint; n > webhookWorkers {
		errs = append(errs, fmt.Errorf("-webhook-workers-per-endpoint %d: must be at most the %d delivery workers", n, webhookWorkers))
	}
	if n := f.withDefaults().WebhookWorkersPerNetwork; n > webhookWorkers {
		errs = append(errs, fmt.Errorf("-webhook-workers-per-network %d: must be at most the %d delivery workers", n, webhookWorkers))
	}
	if w := f.withDefaults(); c.MaxStreams > w.StreamsPerNetwork || w.StreamsPerNetwork > w.StreamsTotal {
		errs = append(errs, fmt.Errorf("event streams: -max-streams (%d) ≤ -max-streams-per-network (%d) ≤ -max-streams-total (%d) must hold",
			c.MaxStreams, w.StreamsPerNetwork, w.StreamsTotal))
	}
	return errors.Join(errs...)
}

// inboxPolicies adds the inbox rate limits to ps, unless ps has them.
func (f FairShares) inboxPolicies(ps []ratelimit.Policy) []ratelimit.Policy {
	w := f.withDefaults()
	for _, p := range []ratelimit.Policy{
		{Name: api.PolicyInbox, Rate: w.InboxRate.PerSecond, Burst: w.InboxRate.Burst},
		{Name: api.PolicyInboxNetwork, Rate: w.InboxNetworkRate.PerSecond, Burst: w.InboxNetworkRate.Burst},
	} {
		known := false
		for _, q := range ps {
			known = known || q.Name == p.Name
		}
		if !known {
			ps = append(ps, p)
		}
	}
	return ps
}

// bindShareFlags declares the fair-share flags on fs, each defaulting to
// its environment variable, then to defaultShares.
func bindShareFlags(fs *flag.FlagSet, cfg *Config, parse func(name, def string, into func(string) error)) {
	f, d := &cfg.Shares, defaultShares
	intFlag := func(into *int, name, env string, def int, usage string) {
		parse(env, strconv.Itoa(def), func(s string) (err error) { *into, err = strconv.Atoi(s); return })
		fs.IntVar(into, name, *into, usage+" (env "+envPrefix+env+")")
	}
	durFlag := func(into *time.Duration, name, env string, def time.Duration, usage string) {
		parse(env, def.String(), func(s string) (err error) { *into, err = time.ParseDuration(s); return })
		fs.DurationVar(into, name, *into, usage+" (env "+envPrefix+env+")")
	}
	rateFlag := func(into *Rate, name, env string, def Rate, usage string) {
		text, _ := def.MarshalText()
		parse(env, string(text), func(s string) error { return into.UnmarshalText([]byte(s)) })
		fs.TextVar(into, name, *into, usage+": `per-second/burst`; 429 rate_limited beyond it (env "+envPrefix+env+")")
	}
	intFlag(&f.KeysPerNetwork, "max-keys-per-network", "MAX_KEYS_PER_NETWORK", d.KeysPerNetwork,
		"API keys one network (/24 or /64) may hold; past it, a new key evicts that network's least recently used key without unfinished work")
	durFlag(&f.KeyTTL, "key-ttl", "KEY_TTL", d.KeyTTL,
		"how long an API key may go unused before it is deleted, with its inboxes and signing secrets (once its work is done)")
	intFlag(&f.JobsPerNetwork, "max-jobs-per-network", "MAX_JOBS_PER_NETWORK", 0,
		"unfinished jobs the keys of one network (/24 or /64) may have together; beyond it POSTs answer 429; 0: a fifth of -queue-size")
	intFlag(&f.GuaranteedJobs, "guaranteed-jobs", "GUARANTEED_JOBS", d.GuaranteedJobs,
		"a key with fewer unfinished jobs than this, in a network with fewer than four times as many, is admitted even when the queue is full (into a reserve of a tenth of -queue-size)")
	intFlag(&f.WebhooksPerNetwork, "max-webhooks-per-network", "MAX_WEBHOOKS_PER_NETWORK", d.WebhooksPerNetwork,
		"webhooks still being delivered (retries included) for the keys of one network; beyond it a webhook is stored as not sent")
	intFlag(&f.WebhookWorkersPerEndpoint, "webhook-workers-per-endpoint", "WEBHOOK_WORKERS_PER_ENDPOINT", d.WebhookWorkersPerEndpoint,
		"webhook delivery attempts under way at once to one receiving host, per replica (of 32 workers)")
	intFlag(&f.WebhookWorkersPerNetwork, "webhook-workers-per-network", "WEBHOOK_WORKERS_PER_NETWORK", d.WebhookWorkersPerNetwork,
		"webhook delivery attempts under way at once for the keys of one network, per replica (of 32 workers)")
	parse("INBOX_BYTES", "256MiB", func(s string) (err error) { f.InboxBytes, err = parseBytes(s); return })
	fs.Func("inbox-bytes", fmt.Sprintf("`size` of what all inboxes store together, such as 256MiB; past it a delivery drops the oldest deliveries of the largest inbox (default 256MiB) (env %sINBOX_BYTES)", envPrefix), func(s string) (err error) {
		f.InboxBytes, err = parseBytes(s)
		return
	})
	durFlag(&f.InboxTTL, "inbox-ttl", "INBOX_TTL", d.InboxTTL, "how long an inbox may receive nothing (and not be changed) before it is deleted")
	rateFlag(&f.InboxRate, "rate-inbox", "RATE_INBOX", d.InboxRate, "rate limit of deliveries posted to one inbox (the sandbox's own webhooks do not count)")
	rateFlag(&f.InboxNetworkRate, "rate-inbox-network", "RATE_INBOX_NETWORK", d.InboxNetworkRate, "rate limit of deliveries one network posts to all inboxes")
	intFlag(&f.StreamsPerNetwork, "max-streams-per-network", "MAX_STREAMS_PER_NETWORK", d.StreamsPerNetwork,
		"event streams the keys of one network may hold open at once, per replica")
	intFlag(&f.StreamsTotal, "max-streams-total", "MAX_STREAMS_TOTAL", d.StreamsTotal, "event streams one replica holds open at once")
}

// parseBytes reads a size: a number of bytes, or one with a KiB, MiB or
// GiB suffix.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if rest, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = strings.TrimSpace(rest), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q: write a size in bytes, or with KiB, MiB or GiB, such as 256MiB", s)
	}
	return n * mult, nil
}
