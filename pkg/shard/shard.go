// Package shard splits broadcasts among archive hosts by rendezvous (highest
// random weight) hashing: every host scores every (host, broadcast) pair with
// the same hash, and a broadcast belongs to the Replicas hosts with the highest
// scores. Every host computes the same answer from the same host list, so there
// is no coordinator and nothing to agree on; adding or removing a host moves
// only the broadcasts that host gains or loses. Specified in docs/discovery.md,
// "Sharding across archive hosts".
package shard

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/zeebo/blake3"
)

// Ring is a host list, its member Self, and a replication factor.
type Ring struct {
	hosts    []string
	self     string
	replicas int
}

// New checks the host list (non-empty names, no duplicates, self among them,
// 1 ≤ replicas ≤ len(hosts)) and returns the ring.
func New(hosts []string, self string, replicas int) (*Ring, error) {
	if len(hosts) == 0 {
		return nil, errors.New("shard: empty host list")
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if h == "" {
			return nil, errors.New("shard: empty host name")
		}
		if seen[h] {
			return nil, fmt.Errorf("shard: host %q listed twice", h)
		}
		seen[h] = true
	}
	if !seen[self] {
		return nil, fmt.Errorf("shard: this host %q is not in the host list %q", self, hosts)
	}
	if replicas < 1 || replicas > len(hosts) {
		return nil, fmt.Errorf("shard: replicas %d: want 1..%d (the number of hosts)", replicas, len(hosts))
	}
	return &Ring{hosts: slices.Clone(hosts), self: self, replicas: replicas}, nil
}

// Owners returns the hosts that archive broadcast, highest score first.
func (r *Ring) Owners(broadcast string) []string {
	type scored struct {
		host  string
		score uint64
	}
	all := make([]scored, len(r.hosts))
	for i, h := range r.hosts {
		all[i] = scored{h, Score(h, broadcast)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.host, b.host)
	})
	owners := make([]string, r.replicas)
	for i := range owners {
		owners[i] = all[i].host
	}
	return owners
}

// Mine reports whether this host is one of broadcast's owners.
func (r *Ring) Mine(broadcast string) bool {
	return slices.Contains(r.Owners(broadcast), r.self)
}

// Score is the weight of host for broadcast: the first 8 bytes of the BLAKE3
// of both names, length-prefixed so that no two pairs share an input.
func Score(host, broadcast string) uint64 {
	h := blake3.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(host)))
	h.Write(n[:])
	h.Write([]byte(host))
	h.Write([]byte(broadcast))
	var sum [32]byte
	h.Sum(sum[:0])
	return binary.BigEndian.Uint64(sum[:8])
}
