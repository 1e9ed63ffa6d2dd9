package s3cas

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/pkg/cas"
)

// listed is one listed key.
type listed struct {
	rel  string // key without the prefix
	size int64
}

// list calls fn for every key under <prefix><keyPrefix>, in key order.
func (s *Store) list(ctx context.Context, keyPrefix string, fn func(listed) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.cfg.Bucket, Prefix: aws.String(s.cfg.Prefix + keyPrefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 store %s: list: %w", s, err)
		}
		for _, o := range page.Contents {
			if err := fn(listed{strings.TrimPrefix(aws.ToString(o.Key), s.cfg.Prefix), aws.ToInt64(o.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// objectID returns the id a well-placed key names: objects/blake3/<2 hex>/<id>.bin.
func objectID(rel string) (cas.ID, bool) {
	name, ok := strings.CutPrefix(rel, "objects/blake3/")
	if !ok || len(name) != 2+1+2*cas.IDSize+len(".bin") || name[2] != '/' || !strings.HasSuffix(name, ".bin") {
		return cas.ID{}, false
	}
	id, err := cas.ParseID(name[3 : 3+2*cas.IDSize])
	if err != nil || id.String()[:2] != name[:2] {
		return cas.ID{}, false
	}
	return id, true
}

// Each calls fn for every well-named object in the bucket. It stops at fn's
// first error.
func (s *Store) Each(ctx context.Context, fn func(cas.ID) error) error {
	return s.list(ctx, "objects/", func(o listed) error {
		if id, ok := objectID(o.rel); ok {
			return fn(id)
		}
		return nil
	})
}

// Verify lists every key under <prefix>objects/ and re-hashes every object,
// reading them back with opts.Workers in parallel, as cas.Verify does for a
// local root: objects whose bytes do not hash to their key are Corrupt, keys
// that are not well-placed object names are Stray. opts.Progress is not used:
// a listing has no shard count to estimate progress from.
func (s *Store) Verify(ctx context.Context, opts cas.VerifyOptions) (cas.VerifyReport, error) {
	start := time.Now()
	report := cas.VerifyReport{Root: s.String()}
	workers := opts.Workers
	if workers <= 0 {
		workers = max(runtime.GOMAXPROCS(0), 8) // network-bound, not CPU-bound
	}
	var (
		mu            sync.Mutex
		objects, size atomic.Int64
		wg            sync.WaitGroup
	)
	add := func(f cas.Finding) {
		mu.Lock()
		report.Findings = append(report.Findings, f)
		mu.Unlock()
	}
	jobs := make(chan listed, 4*workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			h := blake3.New()
			for o := range jobs {
				id, _ := objectID(o.rel)
				n, err := s.hash(ctx, id, h, buf)
				if err != nil {
					add(cas.Finding{Kind: cas.Unreadable, Path: o.rel, Size: o.size, Detail: err.Error()})
					continue
				}
				var got cas.ID
				h.Sum(got[:0])
				objects.Add(1)
				size.Add(n)
				if opts.OnObject != nil {
					opts.OnObject(cas.ObjectCheck{ID: id, Size: n, Match: got == id})
				}
				if got != id {
					add(cas.Finding{Kind: cas.Corrupt, Path: o.rel, Size: n, Expected: id.String(), Actual: got.String()})
				}
			}
		}()
	}
	err := s.list(ctx, "objects/", func(o listed) error {
		if _, ok := objectID(o.rel); !ok {
			add(cas.Finding{Kind: cas.Stray, Path: o.rel, Size: o.size, Detail: "not an object key"})
			return nil
		}
		select {
		case jobs <- o:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	report.Objects, report.Bytes = objects.Load(), size.Load()
	sort.Slice(report.Findings, func(i, j int) bool { return report.Findings[i].Path < report.Findings[j].Path })
	for _, f := range report.Findings {
		switch f.Kind {
		case cas.Corrupt:
			report.Corrupt++
		case cas.Unreadable:
			report.Unreadable++
		case cas.Stray:
			report.Stray++
		}
	}
	report.Duration = time.Since(start)
	if err != nil {
		return report, fmt.Errorf("s3 store: verify: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return report, fmt.Errorf("s3 store: verify: %w", err)
	}
	return report, nil
}

// hash reads object id into h (reset first) and returns its size.
func (s *Store) hash(ctx context.Context, id cas.ID, h *blake3.Hasher, buf []byte) (int64, error) {
	h.Reset()
	r, err := s.Open(ctx, id)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n, err := io.CopyBuffer(h, r, buf)
	if err != nil {
		return n, fmt.Errorf("read object %s: %w", id, err)
	}
	return n, nil
}
