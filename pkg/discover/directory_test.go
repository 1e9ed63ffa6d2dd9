package discover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseDirectoryShapes(t *testing.T) {
	want := []Broadcast{{RelayURL: "https://cdn.moq.dev/anon", Name: "la-nbc"}}
	tests := map[string]string{
		"array":           `[{"relay_url":"https://cdn.moq.dev/anon","broadcast_name":"la-nbc","track_name":"video0.m4s"}]`,
		"entries":         `{"now_ms":1,"entries":[{"relay_url":"https://cdn.moq.dev/anon","broadcast_name":"la-nbc"}]}`,
		"streams alt key": `{"streams":[{"url":"https://cdn.moq.dev/anon","name":"la-nbc"}]}`,
		"nested data":     `{"data":{"streams":[{"relay":"https://cdn.moq.dev/anon","broadcast":"la-nbc"}]}}`,
		"duplicates":      `[{"relay_url":"https://cdn.moq.dev/anon","broadcast_name":"la-nbc"},{"url":"https://cdn.moq.dev/anon","name":"la-nbc"}]`,
		"control announcement": `[{"stream":{"id":"x"},"updated_unix_ms":1,"ttl_ms":2,"transports":[
			{"kind":"iroh_direct","endpoint":"abc","broadcast_name":"la-nbc"},
			{"kind":"relay_moq","url":"https://cdn.moq.dev/anon","broadcast_name":"la-nbc","track_name":"video0.m4s"}]}]`,
	}
	for name, doc := range tests {
		got, err := ParseDirectory(strings.NewReader(doc), nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

func TestParseDirectorySkipsBadEntries(t *testing.T) {
	doc := `{"streams":[
		42, "str", null, [], {},
		{"relay_url":7,"broadcast_name":"a"},
		{"relay_url":"https://r.example","broadcast_name":{"x":1}},
		{"relay_url":"http://r.example","broadcast_name":"plain-http"},
		{"relay_url":"file:///etc/passwd","broadcast_name":"file"},
		{"relay_url":"https://user:pw@r.example","broadcast_name":"userinfo"},
		{"relay_url":"https://r.example","broadcast_name":""},
		{"relay_url":"https://r.example","broadcast_name":"../../etc/passwd"},
		{"relay_url":"https://r.example","broadcast_name":"/abs"},
		{"relay_url":"https://r.example","broadcast_name":"a//b"},
		{"relay_url":"https://r.example","broadcast_name":"nul\u0000byte"},
		{"relay_url":"https://r.example","broadcast_name":"new\nline"},
		{"relay_url":"https://r.example","broadcast_name":"` + strings.Repeat("x", MaxNameLen+1) + `"},
		{"relay_url":null,"broadcast_name":"null-relay"},
		{"relay_url":"https://r.example","broadcast_name":null},
		{"relay_url":"https://r.example","broadcast_name":true},
		{"relay_url":"https://r.example:0","broadcast_name":"port-0"},
		{"relay_url":"https://r.example:99999","broadcast_name":"port-99999"},
		{"relay_url":"https://r.example/anon/../admin","broadcast_name":"dotdot"},
		{"relay_url":"https://r.example/%2e%2e","broadcast_name":"encoded-dotdot"},
		{"relay_url":"https://r.example/anon?jwt=a&x=b","broadcast_name":"query"},
		{"transports":[{"kind":"relay_moq","url":"https://r.example:65536","broadcast_name":"t"}]},
		{"relay_url":"https://r.example","broadcast_name":"good/one"}
	]}`
	var logs bytes.Buffer
	got, err := ParseDirectory(strings.NewReader(doc), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "good/one" {
		t.Errorf("got %v, want only good/one", got)
	}
	if n := strings.Count(logs.String(), "skipping entry"); n != maxLoggedBadEntries {
		t.Errorf("%d per-entry warnings, want %d (the rest counted)", n, maxLoggedBadEntries)
	}
	if !strings.Contains(logs.String(), "skipped=26") {
		t.Errorf("summary warning missing or wrong:\n%s", logs.String())
	}
}

func TestParseDirectoryRejectsDocuments(t *testing.T) {
	entry := `{"relay_url":"https://r.example","broadcast_name":"a"}`
	for name, doc := range map[string]string{
		"not json":            "<html>",
		"no list":             `{"now_ms":1}`,
		"list is null":        `{"entries":null}`,
		"list is an object":   `{"entries":{"a":1}}`,
		"two lists":           `{"entries":[` + entry + `],"streams":[]}`,
		"two nested lists":    `{"data":{"streams":[]},"items":{"entries":[]}}`,
		"scalar":              `42`,
		"null":                `null`,
		"trailing":            `[] []`,
		"trailing garbage":    `[]x`,
		"truncated":           `[` + entry,
		"trailing comma":      `[` + entry + `,]`,
		"deep nesting":        strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000),
		"deep in object":      `{"entries":` + strings.Repeat(`{"a":`, 20_000) + "1" + strings.Repeat("}", 20_000) + "}",
		"just too deep":       `{"entries":[{"x":` + strings.Repeat("[", maxDirectoryDepth-2) + strings.Repeat("]", maxDirectoryDepth-2) + `}]}`,
		"empty":               "",
		"duplicate top key":   `{"entries":[],"entries":[` + entry + `]}`,
		"duplicate entry key": `[{"relay_url":"https://r.example","broadcast_name":"a","broadcast_name":"b"}]`,
		"duplicate deep key":  `[{"relay_url":"https://r.example","broadcast_name":"a","meta":{"x":1,"x":2}}]`,
		"duplicate escaped":   `[{"relay_url":"https://r.example","broadcast_name":"a","broadcast\u005fname":"b"}]`,
		"invalid utf-8":       "[{\"relay_url\":\"https://r.example\",\"broadcast_name\":\"a\xff\"}]",
		"utf-8 bom":           "\uFEFF[]",
		"too large":           strings.Repeat(" ", MaxDirectoryBody) + "[]",
	} {
		got, err := ParseDirectory(strings.NewReader(doc), nil)
		if !errors.Is(err, ErrMalformedDirectory) {
			t.Errorf("%s: got %d broadcasts, %v; want ErrMalformedDirectory", name, len(got), err)
		}
	}
	// Just inside the depth limit is fine.
	ok := `{"entries":[{"x":` + strings.Repeat("[", maxDirectoryDepth-3) + strings.Repeat("]", maxDirectoryDepth-3) + `,"relay_url":"https://r.example","broadcast_name":"a"}]}`
	if got, err := ParseDirectory(strings.NewReader(ok), nil); err != nil || len(got) != 1 {
		t.Errorf("entry at the depth limit: %v, %v", got, err)
	}
}

func TestParseDirectoryThousandsOfEntries(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 20_000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"relay_url":"https://r%d.example/anon","broadcast_name":"ch-%d"}`, i%3, i)
	}
	b.WriteString("]")
	start := time.Now()
	got, err := ParseDirectory(strings.NewReader(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20_000 {
		t.Errorf("got %d broadcasts, want 20000", len(got))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("parsing 20000 entries took %v", d)
	}
}

func TestDirectorySourceLimits(t *testing.T) {
	huge := strings.Repeat(" ", MaxDirectoryBody) + "[]"
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `[{"relay_url":"https://cdn.moq.dev/anon","broadcast_name":"la-nbc"}]`)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, huge) })
	mux.HandleFunc("/dup", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"entries":[],"entries":[]}`) })
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("[", 1024))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	got, err := (&DirectorySource{URL: srv.URL + "/ok"}).List(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("ok: %v, %v", got, err)
	}
	// A document that arrived but cannot be used is ErrMalformedDirectory; a
	// directory that could not be fetched is not.
	for path, malformed := range map[string]bool{"/huge": true, "/dup": true, "/endless": true, "/slow": false, "/500": false, "/missing": false} {
		start := time.Now()
		src := &DirectorySource{URL: srv.URL + path, Timeout: 500 * time.Millisecond}
		got, err := src.List(ctx)
		if err == nil {
			t.Errorf("%s: accepted, got %v", path, got)
		}
		if errors.Is(err, ErrMalformedDirectory) != malformed {
			t.Errorf("%s: %v; want malformed=%v", path, err, malformed)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v despite the 500ms timeout", path, d)
		}
	}
}

func FuzzParseDirectory(f *testing.F) {
	f.Add(`[{"relay_url":"https://cdn.moq.dev/anon","broadcast_name":"la-nbc"}]`)
	f.Add(`{"entries":[{"url":"https://a","name":"b"},1,null]}`)
	f.Add(`{"data":{"streams":[{"transports":[{"kind":"relay_moq","url":"https://a","broadcast_name":"x"}]}]}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, err := ParseDirectory(strings.NewReader(doc), nil)
		if err != nil {
			return
		}
		for _, b := range got {
			if err := b.Validate(); err != nil {
				t.Fatalf("returned invalid broadcast %+v: %v", b, err)
			}
		}
	})
}
