package shard

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func hostNames(n int) []string {
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("archive-%d", i)
	}
	return hosts
}

func broadcastNames(rng *rand.Rand, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("site-%d/cam-%x", rng.IntN(50), rng.Uint64())
	}
	return names
}

func ring(t *testing.T, hosts []string, replicas int) *Ring {
	t.Helper()
	r, err := New(hosts, hosts[0], replicas)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		hosts    []string
		self     string
		replicas int
		want     string
	}{
		{nil, "a", 1, "empty host list"},
		{[]string{"a", ""}, "a", 1, "empty host name"},
		{[]string{"a", "b", "a"}, "a", 1, "listed twice"},
		{[]string{"a", "b"}, "c", 1, "not in the host list"},
		{[]string{"a", "b"}, "a", 0, "replicas 0"},
		{[]string{"a", "b"}, "a", 3, "replicas 3"},
	}
	for _, tt := range tests {
		if _, err := New(tt.hosts, tt.self, tt.replicas); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %q, %d) = %v, want an error containing %q", tt.hosts, tt.self, tt.replicas, err, tt.want)
		}
	}
}

// TestEveryBroadcastHasReplicasOwners: each broadcast is owned by exactly R
// distinct hosts, and every host's Mine agrees with Owners.
func TestEveryBroadcastHasReplicasOwners(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hosts := hostNames(5)
	for replicas := 1; replicas <= len(hosts); replicas++ {
		rings := make([]*Ring, len(hosts))
		for i, h := range hosts {
			var err error
			if rings[i], err = New(hosts, h, replicas); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range broadcastNames(rng, 200) {
			owners := rings[0].Owners(b)
			if len(owners) != replicas || len(slices.Compact(slices.Sorted(slices.Values(owners)))) != replicas {
				t.Fatalf("R=%d: owners of %q = %q", replicas, b, owners)
			}
			mine := 0
			for i, r := range rings {
				if r.Mine(b) {
					mine++
					if !slices.Contains(owners, hosts[i]) {
						t.Fatalf("R=%d: %s claims %q owned by %q", replicas, hosts[i], b, owners)
					}
				}
			}
			if mine != replicas {
				t.Fatalf("R=%d: %d hosts claim %q", replicas, mine, b)
			}
		}
	}
}

// TestOrderOfHostListDoesNotMatter: hosts configured in a different order agree.
func TestOrderOfHostListDoesNotMatter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	hosts := hostNames(6)
	shuffled := slices.Clone(hosts)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	a, b := ring(t, hosts, 2), ring(t, shuffled, 2)
	for _, name := range broadcastNames(rng, 300) {
		if !slices.Equal(a.Owners(name), b.Owners(name)) {
			t.Fatalf("owners of %q: %q with %q, %q with %q", name, a.Owners(name), hosts, b.Owners(name), shuffled)
		}
	}
}

// TestRemovingAHostMovesOnlyItsShare is the property the design rests on: for
// random host sets, replication factors and broadcasts, removing one host
// leaves every broadcast it did not own where it was, and each broadcast it
// owned keeps its other owners and gains exactly one new one. Adding a host is
// the same property read backwards.
func TestRemovingAHostMovesOnlyItsShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		n := 2 + rng.IntN(8)
		hosts := hostNames(n)
		replicas := 1 + rng.IntN(n-1) // leave at least R hosts after the removal
		removed := hosts[rng.IntN(n)]
		rest := slices.DeleteFunc(slices.Clone(hosts), func(h string) bool { return h == removed })
		before, after := ring(t, hosts, replicas), ring(t, rest, replicas)
		for _, b := range broadcastNames(rng, 50) {
			old, cur := before.Owners(b), after.Owners(b)
			if !slices.Contains(old, removed) {
				if !slices.Equal(old, cur) {
					t.Fatalf("trial %d: removing %s (not an owner) moved %q from %q to %q", trial, removed, b, old, cur)
				}
				continue
			}
			kept := slices.DeleteFunc(slices.Clone(old), func(h string) bool { return h == removed })
			gained := 0
			for _, h := range cur {
				if !slices.Contains(kept, h) {
					gained++
				}
			}
			for _, h := range kept {
				if !slices.Contains(cur, h) {
					t.Fatalf("trial %d: removing %s dropped owner %s of %q (%q -> %q)", trial, removed, h, b, old, cur)
				}
			}
			if gained != 1 {
				t.Fatalf("trial %d: removing %s gave %q %d new owners (%q -> %q), want 1", trial, removed, b, gained, old, cur)
			}
		}
	}
}

// TestSharesAreBalanced is a loose check that no host is
// starved or flooded (a broken score, e.g. ignoring the broadcast, fails it).
func TestSharesAreBalanced(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	hosts := hostNames(4)
	r := ring(t, hosts, 1)
	count := map[string]int{}
	const total = 4000
	for _, b := range broadcastNames(rng, total) {
		count[r.Owners(b)[0]]++
	}
	for _, h := range hosts {
		if c := count[h]; c < total/4*7/10 || c > total/4*13/10 {
			t.Errorf("host %s owns %d of %d broadcasts, want about %d", h, c, total, total/4)
		}
	}
}
