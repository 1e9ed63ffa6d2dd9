package serve

import (
	"sync"

	"github.com/every-channel/ec-node/pkg/cas"
)

// bounded is a map that forgets its oldest key beyond max entries.
type bounded[V any] struct {
	max   int
	m     map[cas.ID]V
	order []cas.ID // ring of insertion order once full
	next  int
}

func newBounded[V any](max int) *bounded[V] {
	return &bounded[V]{max: max, m: make(map[cas.ID]V)}
}

func (b *bounded[V]) get(id cas.ID) (V, bool) {
	v, ok := b.m[id]
	return v, ok
}

func (b *bounded[V]) put(id cas.ID, v V) {
	if _, ok := b.m[id]; ok {
		b.m[id] = v
		return
	}
	if len(b.order) < b.max {
		b.order = append(b.order, id)
	} else {
		delete(b.m, b.order[b.next])
		b.order[b.next] = id
		b.next = (b.next + 1) % b.max
	}
	b.m[id] = v
}

// cache holds what archive-serve learned from objects it read, each keyed by
// an object id (so never stale): which objects were verified, parsed
// catalogs, init segments and segment durations.
type cache struct {
	mu       sync.Mutex
	verified *bounded[struct{}]
	catalogs *bounded[map[string]rendition]
	inits    *bounded[[]byte]
	spans    *bounded[float64]
}

func newCache(verified int) *cache {
	return &cache{
		verified: newBounded[struct{}](verified),
		catalogs: newBounded[map[string]rendition](maxCatalogs),
		inits:    newBounded[[]byte](maxCatalogs),
		spans:    newBounded[float64](verified),
	}
}

// maxCatalogs bounds the catalogs and init segments kept: a broadcast has a
// few, one per publisher session or codec change.
const maxCatalogs = 4096

func (c *cache) isVerified(id cas.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.verified.get(id)
	return ok
}

func (c *cache) setVerified(id cas.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verified.put(id, struct{}{})
}

func (c *cache) catalog(id cas.ID) (map[string]rendition, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.catalogs.get(id)
}

func (c *cache) putCatalog(id cas.ID, r map[string]rendition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.catalogs.put(id, r)
}

func (c *cache) init(id cas.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inits.get(id)
}

func (c *cache) putInit(id cas.ID, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inits.put(id, data)
}

func (c *cache) span(id cas.ID) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spans.get(id)
}

func (c *cache) putSpan(id cas.ID, d float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spans.put(id, d)
}
