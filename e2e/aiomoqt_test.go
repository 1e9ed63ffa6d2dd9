//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/every-channel/ec-node/internal/peers"
	"github.com/every-channel/ec-node/pkg/record"
)

// TestAiomoqt: aiomoqt (PyPI), a draft-14 implementation independent of
// moq-net and of ours, publishes a track, and `moq-sub --protocol ietf`
// reads it, through moq-relay restricted to moq-transport-14 and from
// aiomoqt's own server directly. Every group aiomoqt sent must arrive whole:
// the same group numbers, one frame per object with the object's size, the
// objects' bytes in order, and no gap.
func TestAiomoqt(t *testing.T) {
	if _, err := peers.AiomoqtVenv(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: CI must build it (scripts/install-aiomoqt.sh)", err)
		}
		t.Skipf("aiomoqt is not installed (%v); run scripts/install-aiomoqt.sh", err)
	}
	moqSub := buildBinary(t, "moq-sub")
	for _, tc := range []struct {
		name       string
		viaRelay   bool
		endOfGroup bool // not through moq-relay: see internal/peers/aiomoqt_pub.py
	}{
		{name: "through moq-relay", viaRelay: true},
		{name: "direct", endOfGroup: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			dir := t.TempDir()
			opts := peers.AiomoqtOptions{Namespace: "aiomoqt/demo", Track: "data", Groups: 6, Objects: 4,
				EndOfGroup: tc.endOfGroup, LogDir: dir}
			if tc.viaRelay {
				relay, err := peers.StartRelay(ctx, t.Logf, peers.RelayOptions{LogDir: dir,
					Versions: []string{"moq-transport-14"}})
				if err != nil {
					t.Fatal(err)
				}
				defer relay.Stop()
				opts.Relay = relay
			}
			pub, err := peers.StartAiomoqt(ctx, t.Logf, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Stop()
			url, fingerprint := pub.URL(), pub.Fingerprint()
			if tc.viaRelay {
				url, fingerprint = opts.Relay.URL("anon"), opts.Relay.Fingerprint()
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("aiomoqt:\n%s\nmoq-sub:\n%s", readFile(dir, "aiomoqt.log"), readFile(dir, "moq-sub.log"))
				}
			})

			sub := exec.CommandContext(ctx, moqSub, "--url", url, "--tls-fingerprint", fingerprint,
				"--protocol", "ietf", "--name", opts.Namespace, "--track", opts.Track)
			sub.Stderr = logFile(t, dir, "moq-sub.log")
			out, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			sub.Stdout = w
			err = sub.Start()
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := readGroups(t, out, opts.Groups)
			if err := sub.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, out) // until moq-sub exits
			if err := sub.Wait(); err != nil {
				t.Fatalf("moq-sub: %v", err)
			}

			sent, err := pub.Published(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != opts.Groups {
				t.Fatalf("aiomoqt reports %d groups sent, want %d", len(sent), opts.Groups)
			}
			for _, want := range sent {
				g, ok := got[want.Group]
				if !ok {
					t.Fatalf("aiomoqt sent group %d, moq-sub wrote groups %v", want.Group, slices.Sorted(maps.Keys(got)))
				}
				if len(g.header.Frames) != len(want.Objects) {
					t.Fatalf("group %d: %d frames, aiomoqt sent %d objects", want.Group, len(g.header.Frames), len(want.Objects))
				}
				var off int64
				for j, obj := range want.Objects {
					size := g.header.Frames[j]
					if size != int64(len(obj)) {
						t.Fatalf("group %d object %d: frame of %d bytes, aiomoqt sent %d", want.Group, j, size, len(obj))
					}
					if !bytes.Equal(g.payload[off:off+size], obj) {
						t.Fatalf("group %d object %d: payload differs from what aiomoqt sent", want.Group, j)
					}
					off += size
				}
			}
			t.Logf("%d groups of %d objects read as aiomoqt sent them", len(sent), opts.Objects)
		})
	}
}

type groupRecord struct {
	header  record.Header
	payload []byte
}

// readGroups reads n group records from moq-sub's output, by group number; a
// gap record, a group twice or an early end fails the test.
func readGroups(t *testing.T, out io.Reader, n int) map[uint64]groupRecord {
	t.Helper()
	rd, err := record.NewReader(out, record.FormatLimits())
	if err != nil {
		t.Fatal(err)
	}
	groups := make(map[uint64]groupRecord)
	for len(groups) < n {
		h, body, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("moq-sub ended its output")
			}
			t.Fatalf("after %d groups: %v", len(groups), err)
		}
		if h.Kind != record.KindGroup {
			t.Fatalf("after %d groups: a %s record (%s, groups %d-%d)", len(groups), h.Kind, h.Reason, h.First, h.Last)
		}
		payload, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := groups[h.Group]; dup {
			t.Fatalf("group %d written twice", h.Group)
		}
		groups[h.Group] = groupRecord{h, payload}
	}
	return groups
}
