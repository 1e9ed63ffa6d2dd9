package command

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/manifest"
	"github.com/every-channel/ec-node/pkg/record"
	"github.com/urfave/cli/v2"
	"github.com/zeebo/blake3"
)

// runStage runs one command as its small binary would, with the given stdin.
func runStage(t *testing.T, cmd *cli.Command, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := NewApp("stage", "", cmd)
	app.Reader, app.Writer, app.ErrWriter = stdin, &out, &errOut
	err := app.RunContext(context.Background(), append([]string{"stage"}, args...))
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), ExitCode(err)
}

func TestB3sumLine(t *testing.T) {
	var id cas.ID
	h := id.String()
	tests := []struct{ name, want string }{
		{"plain", h + "  plain\n"},
		{"-", h + "  -\n"},
		{"new\nline", `\` + h + `  new\nline` + "\n"},
		{`back\slash`, `\` + h + `  back\\slash` + "\n"},
		{"cr\rx", h + "  cr\rx\n"},
		{"bad\xffname", h + "  bad\uFFFDname\n"},
		{"\xe2\x82x", h + "  \uFFFDx\n"},               // truncated 3-byte sequence: one U+FFFD
		{"\xed\xa0\x80", h + "  \uFFFD\uFFFD\uFFFD\n"}, // surrogate: three
		{"\xf0\x9f\x98", h + "  \uFFFD\n"},
	}
	for _, tt := range tests {
		if got := b3sumLine(id, tt.name); got != tt.want {
			t.Errorf("b3sumLine(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCASPutFiles(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("same"), 0o644)
	os.WriteFile(b, []byte("same"), 0o644)
	sum := blake3.Sum256([]byte("same"))
	id := cas.ID(sum)
	stdout, stderr, code := runStage(t, CASPut(), strings.NewReader("stdin bytes"), "--root", root, a, b, "-", filepath.Join(dir, "missing"))
	std := cas.ID(blake3.Sum256([]byte("stdin bytes")))
	want := id.String() + "  " + a + "\n" + id.String() + "  " + b + "\n" + std.String() + "  -\n"
	if stdout != want || code != ExitFailure || !strings.Contains(stderr, "missing: open") {
		t.Fatalf("code %d\nstdout %q\nwant   %q\nstderr %q", code, stdout, want, stderr)
	}
	if data, err := os.ReadFile(filepath.Join(root, cas.ObjectPath(id))); err != nil || string(data) != "same" {
		t.Fatalf("object at layout path: %q, %v", data, err)
	}
}

func groupHeader(seq uint64, size int64) record.Header {
	return record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: "live/x", Track: "video",
		Group: seq, Frames: []int64{size}, Size: size, ReceivedUnixMs: 1700000000000}
}

func recordStream(t *testing.T, payloads ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := record.NewWriter(&buf)
	for i, p := range payloads {
		if err := w.WriteGroup(groupHeader(uint64(i+1), int64(len(p))), strings.NewReader(p)); err != nil {
			t.Fatal(err)
		}
	}
	gap := record.Header{V: record.Version, Kind: record.KindGap, Broadcast: "live/x", Track: "video",
		First: 100, Last: 101, Reason: record.GapReset, ReceivedUnixMs: 1700000000001}
	if err := w.WriteGap(gap); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// objectCount counts published objects under a store root.
func objectCount(t *testing.T, root string) int {
	t.Helper()
	n := 0
	store, err := cas.OpenLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	store.Each(context.Background(), func(cas.ID) error { n++; return nil })
	return n
}

func TestCASPutRecords(t *testing.T) {
	root := t.TempDir()
	payloads := []string{"alpha", "", "beta", "alpha"}
	stdout, stderr, code := runStage(t, CASPut(), bytes.NewReader(recordStream(t, payloads...)), "--root", root, "--records", "--jobs", "2")
	if code != ExitOK {
		t.Fatalf("code %d: %s", code, stderr)
	}
	dec := manifest.NewDecoder(strings.NewReader(stdout))
	var news []bool
	for i := range payloads {
		e, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		id := cas.ID(blake3.Sum256([]byte(payloads[i])))
		if e.Group != uint64(i+1) || e.BLAKE3 != id.String() || e.Path != cas.ObjectPath(id) || e.New == nil {
			t.Fatalf("entry %d: %+v", i, e)
		}
		news = append(news, *e.New)
	}
	if news[0] != true || news[3] != false {
		t.Fatalf("new flags %v: want the repeated payload to be a dedup hit", news)
	}
	if e, err := dec.Next(); err != nil || e.Kind != record.KindGap || e.BLAKE3 != "" {
		t.Fatalf("gap entry: %+v, %v", e, err)
	}
	if n := objectCount(t, root); n != 3 {
		t.Fatalf("%d objects, want 3", n)
	}
}

func TestCASPutRejectsBadRecords(t *testing.T) {
	good := recordStream(t, "one", "two")
	oversized := recordStream(t, "one", strings.Repeat("x", 100))
	tests := []struct {
		name    string
		stream  []byte
		args    []string
		entries int
		objects int
		want    string
	}{
		{"bad terminator in record 2", bytes.Replace(good, []byte("two\n"), []byte("twoX"), 1), nil, 1, 1, "record 2 at byte"},
		{"truncated payload", good[:bytes.Index(good, []byte("two"))+2], nil, 1, 1, "payload truncated"},
		{"oversized record", oversized, []string{"--max-payload", "50"}, 1, 1, "payload size 100 exceeds limit 50"},
		{"bad terminator after a gap", append(bytes.TrimSuffix(good, []byte("\n")), 'X'), nil, 2, 2, "record 3 at byte"},
		{"not a record stream", []byte("hello world\n"), nil, 0, 0, "record 1 at byte 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			args := append([]string{"--root", root, "--records"}, tt.args...)
			stdout, stderr, code := runStage(t, CASPut(), bytes.NewReader(tt.stream), args...)
			if code != ExitDataErr || !strings.Contains(stderr, tt.want) {
				t.Fatalf("code %d, stderr %q; want %d and %q", code, stderr, ExitDataErr, tt.want)
			}
			if n := strings.Count(stdout, "\n"); n != tt.entries {
				t.Fatalf("%d entries printed, want %d", n, tt.entries)
			}
			if n := objectCount(t, root); n != tt.objects {
				t.Fatalf("%d objects stored, want %d", n, tt.objects)
			}
			tmp, _ := os.ReadDir(filepath.Join(root, "objects/blake3/.tmp"))
			if len(tmp) != 0 {
				t.Fatalf("temp files left: %v", tmp)
			}
		})
	}
}
