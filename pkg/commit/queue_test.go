package commit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/zeebo/blake3"
)

func group(seq uint64, payload string) record.Header {
	n := int64(len(payload))
	return record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: "b", Track: "video",
		Group: seq, Frames: []int64{n}, Size: n, ReceivedUnixMs: 1}
}

func gap(first, last uint64) record.Header {
	return record.Header{V: record.Version, Kind: record.KindGap, Broadcast: "b", Track: "video",
		First: first, Last: last, Reason: record.GapReset, ReceivedUnixMs: 1}
}

// gatedWriter holds Commit until the test releases it: a nil release commits,
// an error fails the commit.
type gatedWriter struct {
	cas.Writer
	started chan struct{}
	release chan error
	aborted bool
}

func gated(t *testing.T, s cas.Store, payload string) *gatedWriter {
	t.Helper()
	w, err := s.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(payload))
	return &gatedWriter{Writer: w, started: make(chan struct{}), release: make(chan error, 1)}
}

func (g *gatedWriter) Commit() (cas.PutResult, error) {
	close(g.started)
	if err := <-g.release; err != nil {
		g.Writer.Abort()
		return cas.PutResult{}, err
	}
	return g.Writer.Commit()
}

func (g *gatedWriter) Abort() error {
	g.aborted = true
	return g.Writer.Abort()
}

// recorder is a Deliver that keeps what it was given and checks that each
// object is in the store when its entry arrives.
type recorder struct {
	t     *testing.T
	store cas.Store
	mu    sync.Mutex
	got   []string // "<group>" or "gap:<first>", plus "+" when more was set
	fail  func(manifest.Entry) error
}

func (r *recorder) deliver(e manifest.Entry, more bool) error {
	if r.fail != nil {
		if err := r.fail(e); err != nil {
			return err
		}
	}
	name := fmt.Sprint(e.Group)
	if e.Kind == record.KindGap {
		name = fmt.Sprintf("gap:%d", e.First)
	} else {
		id, err := cas.ParseID(e.BLAKE3)
		if err != nil || e.Path != cas.ObjectPath(id) || e.New == nil {
			r.t.Errorf("entry %s: object fields %q %q %v", name, e.BLAKE3, e.Path, e.New)
		} else if _, err := r.store.Stat(context.Background(), id); err != nil {
			r.t.Errorf("entry %s delivered before its object is stored: %v", name, err)
		}
	}
	if more {
		name += "+"
	}
	r.mu.Lock()
	r.got = append(r.got, name)
	r.mu.Unlock()
	return nil
}

func (r *recorder) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func TestQueueDeliversInAddOrder(t *testing.T) {
	store := cas.NewMemory()
	rec := &recorder{t: t, store: store}
	q := NewQueue(store, 5, rec.deliver)
	payloads := []string{"zero", "one", "two", "three"}
	var ws []*gatedWriter
	var ps []*Pending
	for i, payload := range payloads {
		w := gated(t, store, payload)
		p, err := q.Add(group(uint64(i), payload), w)
		if err != nil {
			t.Fatal(err)
		}
		ws, ps = append(ws, w), append(ps, p)
	}
	gapPending, err := q.Add(gap(10, 11), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Commits finish last to first; nothing may be delivered before group 0.
	for i := len(ws) - 1; i >= 0; i-- {
		<-ws[i].started
		if got := rec.delivered(); len(got) != 0 {
			t.Fatalf("delivered %v before group 0 committed", got)
		}
		if i == 0 {
			for _, p := range ps[1:] {
				<-p.committed // so that more is set deterministically
			}
		}
		ws[i].release <- nil
	}
	if _, err := gapPending.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"0+", "1+", "2+", "3+", "gap:10"}
	if got := rec.delivered(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestQueueBoundsCommitsInFlight(t *testing.T) {
	const jobs = 3
	store := cas.NewMemory()
	rec := &recorder{t: t, store: store}
	q := NewQueue(store, jobs, rec.deliver)
	var ws []*gatedWriter
	for i := range jobs {
		w := gated(t, store, fmt.Sprint(i))
		q.Add(group(uint64(i), fmt.Sprint(i)), w)
		ws = append(ws, w)
	}
	for _, w := range ws {
		<-w.started // all jobs commits run at once
	}
	if len(q.slots) != jobs {
		t.Fatalf("%d of %d slots taken with %d commits running", len(q.slots), jobs, jobs)
	}
	// The slots are full, so this Add waits until group 0 is delivered.
	added := make(chan *gatedWriter)
	go func() {
		w := gated(t, store, "late")
		q.Add(group(jobs, "late"), w)
		added <- w
	}()
	ws[0].release <- nil // group 0 delivered: one slot frees
	late := <-added
	ws[1].release <- nil
	ws[2].release <- nil
	late.release <- nil
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rec.delivered(); len(got) != jobs+1 {
		t.Fatalf("delivered %v", got)
	}
}

func TestQueueStopsAtFirstFailure(t *testing.T) {
	store := cas.NewMemory()
	rec := &recorder{t: t, store: store}
	q := NewQueue(store, 8, rec.deliver)
	broken := errors.New("disk full")
	var pending []*Pending
	var ws []*gatedWriter
	for i := range 4 {
		w := gated(t, store, fmt.Sprint("payload ", i))
		p, err := q.Add(group(uint64(i), fmt.Sprint("payload ", i)), w)
		if err != nil {
			t.Fatal(err)
		}
		pending, ws = append(pending, p), append(ws, w)
	}
	for _, w := range ws {
		<-w.started
	}
	ws[0].release <- nil
	ws[2].release <- nil // committed, but behind the failure
	ws[1].release <- broken
	if _, err := pending[1].Wait(); !errors.Is(err, broken) {
		t.Fatalf("failed entry: %v, want %v", err, broken)
	}
	if _, err := pending[2].Wait(); !errors.Is(err, ErrStopped) || !errors.Is(err, broken) {
		t.Fatalf("entry behind the failure: %v, want ErrStopped wrapping %v", err, broken)
	}
	late := gated(t, store, "late")
	if _, err := q.Add(group(9, "late"), late); !errors.Is(err, ErrStopped) || !late.aborted {
		t.Fatalf("Add after the failure: %v (aborted %v), want ErrStopped and the writer aborted", err, late.aborted)
	}
	if _, err := q.Put(context.Background(), group(10, "put"), strings.NewReader("put")); !errors.Is(err, ErrStopped) {
		t.Fatalf("Put after the failure: %v, want ErrStopped", err)
	}
	ws[3].release <- nil
	if err := q.Close(); !errors.Is(err, broken) {
		t.Fatalf("Close = %v, want %v", err, broken)
	}
	if got := rec.delivered(); !slices.Equal(got, []string{"0"}) && !slices.Equal(got, []string{"0+"}) {
		t.Fatalf("delivered %v, want only group 0", got)
	}
	if _, err := store.Stat(context.Background(), cas.ID(blake3.Sum256([]byte("late")))); err == nil {
		t.Error("object added after the failure was stored")
	}
}

func TestQueueDeliverFailureStops(t *testing.T) {
	store := cas.NewMemory()
	broken := errors.New("stdout closed")
	rec := &recorder{t: t, store: store, fail: func(e manifest.Entry) error {
		if e.Group == 1 {
			return broken
		}
		return nil
	}}
	q := NewQueue(store, 1, rec.deliver)
	for i := range 3 {
		if _, err := q.Put(context.Background(), group(uint64(i), "x"), strings.NewReader("x")); err != nil && i < 2 {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	if err := q.Close(); !errors.Is(err, broken) {
		t.Fatalf("Close = %v, want %v", err, broken)
	}
	if got := rec.delivered(); !slices.Equal(got, []string{"0"}) {
		t.Fatalf("delivered %v, want only group 0", got)
	}
}

func TestQueueRejectsMismatches(t *testing.T) {
	store := cas.NewMemory()
	tests := []struct {
		name string
		add  func(q *Queue) (*Pending, error)
		want string
	}{
		{"payload shorter than the header says", func(q *Queue) (*Pending, error) {
			h := group(1, "four")
			return q.Put(context.Background(), h, strings.NewReader("abc"))
		}, "stored 3 bytes for a group of 4"},
		{"group without a writer", func(q *Queue) (*Pending, error) { return q.Add(group(1, "x"), nil) }, "payload writer false"},
		{"gap with a writer", func(q *Queue) (*Pending, error) {
			w, _ := store.Create(context.Background())
			return q.Add(gap(1, 2), w)
		}, "payload writer true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{t: t, store: store}
			q := NewQueue(store, 2, rec.deliver)
			p, err := tt.add(q)
			if err == nil {
				_, err = p.Wait()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if got := rec.delivered(); len(got) != 0 {
				t.Fatalf("delivered %v", got)
			}
		})
	}
}

func TestQueueWaitReturnsTheObject(t *testing.T) {
	store := cas.NewMemory()
	q := NewQueue(store, 2, func(manifest.Entry, bool) error { return nil })
	var ps []*Pending
	for i := range 2 {
		p, err := q.Put(context.Background(), group(uint64(i), "same"), strings.NewReader("same"))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	id := cas.ID(blake3.Sum256([]byte("same")))
	news := 0
	for i, p := range ps {
		e, err := p.Wait()
		if err != nil || e.BLAKE3 != id.String() || e.Path != cas.ObjectPath(id) {
			t.Fatalf("entry %d: %+v, %v; want object %s", i, e, err, id)
		}
		if *e.New {
			news++
		}
	}
	if news != 1 {
		t.Fatalf("%d entries report a new object, want 1 (the other a dedup hit)", news)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(gap(1, 1), nil); err == nil {
		t.Fatal("Add after Close succeeded")
	}
}
