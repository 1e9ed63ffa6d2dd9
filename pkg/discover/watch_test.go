package discover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	a := Broadcast{"https://r", "a"}
	b := Broadcast{"https://r", "b"}
	c := Broadcast{"https://q", "c"}
	got := fmt.Sprint(Diff([]Broadcast{a, b}, []Broadcast{b, c, c}))
	want := "[{remove {https://r a}} {add {https://q c}}]"
	if got != want {
		t.Errorf("Diff = %s, want %s", got, want)
	}
	if ev := Diff([]Broadcast{a}, []Broadcast{a}); len(ev) != 0 {
		t.Errorf("Diff of equal listings = %v", ev)
	}
}

// scriptedSource is a stand-in Source returning one prepared result per call.
type scriptedSource struct {
	results []any // []Broadcast or error
	calls   int
	done    func()
}

func (s *scriptedSource) List(ctx context.Context) ([]Broadcast, error) {
	i := s.calls
	s.calls++
	if i >= len(s.results) {
		s.done()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err, ok := s.results[i].(error); ok {
		return nil, err
	}
	return s.results[i].([]Broadcast), nil
}

func TestWatchEmitsChangesAndSurvivesErrors(t *testing.T) {
	a := Broadcast{"https://r", "a"}
	b := Broadcast{"https://r", "b"}
	ctx, cancel := context.WithCancel(context.Background())
	src := &scriptedSource{results: []any{
		[]Broadcast{a},
		errors.New("directory down"), // must not remove a
		[]Broadcast{a, b},
		[]Broadcast{b},
	}, done: cancel}
	var events []string
	err := Watch(ctx, src, time.Millisecond, slog.New(slog.DiscardHandler), func(e Event) error {
		events = append(events, e.Kind+" "+e.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(events), "[add a add b remove a]"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}
