package backoff

import (
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Minute}
	tests := []struct {
		attempt int
		nominal time.Duration
	}{
		{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {5, 32 * time.Second},
		{6, time.Minute}, {20, time.Minute}, {1 << 30, time.Minute},
	}
	for _, tt := range tests {
		for i := 0; i < 200; i++ {
			d := p.Delay(tt.attempt)
			if d < tt.nominal/2 || d > tt.nominal {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tt.attempt, d, tt.nominal/2, tt.nominal)
			}
		}
	}
}

func TestDelayJitters(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[p.Delay(4)] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 delays took only %d distinct values; jitter is missing", len(seen))
	}
}

func TestZeroPolicy(t *testing.T) {
	if d := (Policy{}).Delay(3); d != 0 {
		t.Errorf("zero policy Delay = %v, want 0", d)
	}
}
