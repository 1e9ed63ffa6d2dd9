package supervise

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// WorkFunc archives one broadcast until ctx is cancelled (then it returns nil)
// or it gives up (an error); archive.Run behind a small adapter.
type WorkFunc func(ctx context.Context, w Worker, statusFile string) error

// InProcess runs each worker as a goroutine of this process.
type InProcess struct {
	Work      WorkFunc
	StatusDir string
	Logger    *slog.Logger

	mu      sync.Mutex
	workers map[string]*goroutine
}

type goroutine struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

var _ Runner = (*InProcess)(nil)

// Start starts w under ctx; cancelling ctx stops it like Stop.
func (r *InProcess) Start(ctx context.Context, w Worker) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.workers[w.Instance]; ok && !closed(g.done) {
		return nil
	}
	if r.workers == nil {
		r.workers = map[string]*goroutine{}
	}
	wctx, cancel := context.WithCancel(ctx)
	g := &goroutine{cancel: cancel, done: make(chan struct{})}
	r.workers[w.Instance] = g
	go func() {
		defer close(g.done)
		g.err = r.Work(wctx, w, StatusFile(r.StatusDir, w.Instance))
		if g.err == nil && wctx.Err() == nil {
			g.err = errors.New("worker returned without being stopped")
		}
	}()
	return nil
}

// Stop cancels the worker and waits for it to finish (or for ctx).
func (r *InProcess) Stop(ctx context.Context, instance string) error {
	r.mu.Lock()
	g, ok := r.workers[instance]
	delete(r.workers, instance)
	r.mu.Unlock()
	if !ok {
		return nil
	}
	g.cancel()
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List reports running and ended workers; an ended worker stays listed (with
// its error) until it is started again or stopped.
func (r *InProcess) List(context.Context) (map[string]WorkerState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]WorkerState, len(r.workers))
	for inst, g := range r.workers {
		if !closed(g.done) {
			out[inst] = WorkerState{Running: true}
			continue
		}
		st := WorkerState{Failed: g.err != nil}
		if g.err != nil {
			st.Detail = g.err.Error()
		}
		out[inst] = st
	}
	return out, nil
}

// Shutdown stops every worker and waits for them (or for ctx).
func (r *InProcess) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	insts := make([]string, 0, len(r.workers))
	for inst := range r.workers {
		insts = append(insts, inst)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(insts))
	for i, inst := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Stop(ctx, inst)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
