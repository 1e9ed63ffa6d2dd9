package manifest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/every-channel/ec-node/internal/safefs"
	"github.com/every-channel/ec-node/pkg/cas"
)

func testSession(pid int) SubscriberSession {
	return SubscriberSession{V: SessionLogVersion, StartedUnixMs: 1767225600123, Tool: "wt-archive", PID: pid,
		Broadcast: "live/alice", Relay: "https://relay.example:4443/anon", Protocol: "ietf",
		Version: "moq-transport-14", Transport: "webtransport", ALPN: "h3", Subprotocol: "moq-00"}
}

func readSessions(t *testing.T, dir string) []SubscriberSession {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, SessionLogName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []SubscriberSession
	dec := NewSessionLogDecoder(f)
	for {
		s, err := dec.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
}

// Two logs of one directory (as two processes would hold) append
// concurrently: every line arrives whole, none interleaved.
func TestSessionLogConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for w := range 2 {
		l, err := OpenSessionLog(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if err := l.Append(testSession(w*100 + i + 1)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got := readSessions(t, dir)
	if len(got) != 40 {
		t.Fatalf("%d lines, want 40", len(got))
	}
	pids := map[int]bool{}
	for _, s := range got {
		pids[s.PID] = true
		if want := testSession(s.PID); !reflect.DeepEqual(s, want) {
			t.Fatalf("line %+v, want %+v", s, want)
		}
	}
	if len(pids) != 40 {
		t.Fatalf("%d distinct lines, want 40", len(pids))
	}
}

func TestSessionLogCutsTornTail(t *testing.T) {
	for _, tail := range []string{`{"v":1,"started_unix_ms":17`, "\x00\x00\x00\x00\n"} {
		dir := t.TempDir()
		l, err := OpenSessionLog(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Append(testSession(1)); err != nil {
			t.Fatal(err)
		}
		appendRaw(t, filepath.Join(dir, SessionLogName), tail)
		if err := l.Append(testSession(2)); err != nil {
			t.Fatal(err)
		}
		got := readSessions(t, dir)
		if len(got) != 2 || got[0].PID != 1 || got[1].PID != 2 {
			t.Fatalf("tail %q: lines %+v, want pids 1 and 2", tail, got)
		}
	}
}

func TestSessionLogRefusesLink(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte(precious), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, SessionLogName)); err != nil {
		t.Fatal(err)
	}
	l, err := OpenSessionLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(testSession(1)); !errors.Is(err, safefs.ErrSymlink) {
		t.Fatalf("append through a link: %v, want %v", err, safefs.ErrSymlink)
	}
	if b, _ := os.ReadFile(outside); string(b) != precious {
		t.Fatalf("file outside the manifest directory changed: %q", b)
	}
	store, _ := cas.OpenLocal(t.TempDir())
	rep, err := Check(context.Background(), dir, store, CheckOptions{})
	if err != nil || rep.ProblemCount != 1 || rep.Problems[0].Kind != ProblemStrayFile {
		t.Fatalf("check: %+v, %v; want one stray-file", rep, err)
	}
}

func TestSessionLogValidate(t *testing.T) {
	tests := map[string]func(*SubscriberSession){
		"version":           func(s *SubscriberSession) { s.V = 2 },
		"negative time":     func(s *SubscriberSession) { s.StartedUnixMs = -1 },
		"no broadcast":      func(s *SubscriberSession) { s.Broadcast = "" },
		"long broadcast":    func(s *SubscriberSession) { s.Broadcast = strings.Repeat("b", 64<<10+1) },
		"jwt in relay":      func(s *SubscriberSession) { s.Relay += "?jwt=secret" },
		"empty query":       func(s *SubscriberSession) { s.Relay += "?" },
		"user info":         func(s *SubscriberSession) { s.Relay = "https://user:pw@relay.example/" },
		"fragment":          func(s *SubscriberSession) { s.Relay += "#x" },
		"http":              func(s *SubscriberSession) { s.Relay = "http://relay.example/" },
		"long relay":        func(s *SubscriberSession) { s.Relay = "https://r/" + strings.Repeat("a", MaxRelayURL) },
		"no tool":           func(s *SubscriberSession) { s.Tool = "" },
		"protocol with \\n": func(s *SubscriberSession) { s.Protocol = "ietf\n" },
		"long version":      func(s *SubscriberSession) { s.Version = strings.Repeat("v", maxToken+1) },
		"alpn with space":   func(s *SubscriberSession) { s.ALPN = "h 3" },
		"no transport":      func(s *SubscriberSession) { s.Transport = "" },
	}
	for name, breakIt := range tests {
		s := testSession(1)
		breakIt(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: valid, want an error", name)
		}
		if err := (&SessionLog{}).Append(s); err == nil {
			t.Errorf("%s: appended", name)
		}
	}
	s := testSession(1)
	s.Subprotocol = ""
	if err := s.Validate(); err != nil {
		t.Errorf("no subprotocol: %v", err)
	}
	for _, relay := range []string{"moqt://relay.example:4443/anon", "moql://relay.example/"} {
		s := testSession(1)
		s.Relay, s.Transport, s.ALPN, s.Subprotocol = relay, "quic", "moq-lite-06", ""
		if err := s.Validate(); err != nil {
			t.Errorf("raw QUIC relay %s: %v", relay, err)
		}
	}
}

func TestParseSessionLogLineStrict(t *testing.T) {
	good, err := appendSessionLogLine(nil, testSession(7))
	if err != nil {
		t.Fatal(err)
	}
	good = bytes.TrimSuffix(good, []byte("\n"))
	if _, err := ParseSessionLogLine(good); err != nil {
		t.Fatalf("good line: %v", err)
	}
	tests := map[string]string{
		"unknown field":   strings.Replace(string(good), `{"v":1`, `{"v":1,"host":"a"`, 1),
		"repeated field":  strings.Replace(string(good), `{"v":1`, `{"v":1,"v":1`, 1),
		"null":            strings.Replace(string(good), `"pid":7`, `"pid":null`, 1),
		"missing field":   strings.Replace(string(good), `"alpn":"h3",`, ``, 1),
		"case":            strings.Replace(string(good), `"tool"`, `"Tool"`, 1),
		"a manifest line": `{"v":1,"kind":"gap","broadcast":"b","track":"t","group":0,"size":0,"first":1,"last":1,"reason":"reset","received_unix_ms":0}`,
	}
	for name, line := range tests {
		if line == string(good) {
			t.Fatalf("%s: test line unchanged", name)
		}
		if _, err := ParseSessionLogLine([]byte(line)); err == nil {
			t.Errorf("%s: parsed %s", name, line)
		}
	}
	// Nor is a session line ever taken for a manifest entry.
	if _, err := ParseLine(good); err == nil {
		t.Error("a session log line parses as a manifest entry")
	}
}

// The session log can never be a broadcast directory or a track's file.
func TestSessionLogNameCollidesWithNoManifest(t *testing.T) {
	for _, name := range []string{SessionLogName, ".sessions", "sessions.jsonl", "." + strings.Repeat("x", 300)} {
		esc, err := EscapeName(name)
		if err != nil {
			t.Fatal(err)
		}
		if esc == SessionLogName || strings.HasPrefix(esc, ".") {
			t.Errorf("EscapeName(%q) = %q, which the session log could collide with", name, esc)
		}
	}
}

func TestCheckSessionLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, _ := cas.OpenLocal(t.TempDir())
	l, err := OpenSessionLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Append(testSession(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := openTest(t, dir)
	if _, err := a.Append(gapEntry(1, 2)); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(ctx, dir, store, CheckOptions{})
	if err != nil || !rep.Clean() || rep.Sessions != 3 || rep.Files != 1 || rep.Lines != 1 {
		t.Fatalf("clean: %+v, %v", rep, err)
	}
	appendRaw(t, filepath.Join(dir, SessionLogName), `{"v":1}`+"\n"+`{"v":1`)
	rep, err = Check(ctx, dir, store, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Problem{{Kind: ProblemInvalidLine, File: SessionLogName, Line: 4}, {Kind: ProblemTornTail, File: SessionLogName, Line: 5}}
	if len(rep.Problems) != len(want) || rep.Sessions != 3 {
		t.Fatalf("problems %+v (sessions %d), want %+v", rep.Problems, rep.Sessions, want)
	}
	for i, p := range rep.Problems {
		if p.Kind != want[i].Kind || p.File != want[i].File || p.Line != want[i].Line {
			t.Errorf("problem %d: %+v, want %+v", i, p, want[i])
		}
	}
}

func TestRelayForLog(t *testing.T) {
	for in, want := range map[string]string{
		"https://relay.example:4443/anon?jwt=secret":    "https://relay.example:4443/anon",
		"https://user:pw@relay.example/a/b?x=1&jwt=y#f": "https://relay.example/a/b",
		"https://relay.example/?":                       "https://relay.example/",
	} {
		got, err := RelayForLog(in)
		if err != nil || got != want {
			t.Errorf("RelayForLog(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err := checkRelay(got); err != nil {
			t.Errorf("RelayForLog(%q) = %q, which the log refuses: %v", in, got, err)
		}
	}
	if _, err := RelayForLog("https://relay.example/%zz?jwt=secret"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unparseable URL: %v", err)
	}
}
