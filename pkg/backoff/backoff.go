// Package backoff computes capped exponential retry delays with jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy doubles the delay from Min with every consecutive failure up to Max.
// Each delay is drawn uniformly from [d/2, d] ("equal jitter"), so that many
// workers failing together do not retry in lockstep, yet none retries sooner
// than half the nominal delay.
type Policy struct {
	Min, Max time.Duration
}

// Delay is the wait before retry number attempt (0 for the first retry).
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Min
	for i := 0; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max {
		d = p.Max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
