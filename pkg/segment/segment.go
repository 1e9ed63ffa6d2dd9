// Package segment ships local manifest files to an object store as sealed,
// immutable segments, and reads them back. A manifest stays local and
// append-only; every Ship seals the complete lines appended to it since the
// last segment into the next one:
//
//	<prefix>manifests/<escape(origin)>/<escape(broadcast)>/<escape(track)>/<seq, 10 digits>.jsonl
//
// The origin names the host whose manifests they are: hosts sharing a bucket
// (replicas of one broadcast) each keep their own chain.
//
// A segment is one header line then the manifest bytes it seals, verbatim. The
// header names the segment's place in the file (offset, length), its sequence
// number and the BLAKE3 of its predecessor segment, so a chain with a missing,
// reordered or altered segment is detected on read. Segments are written
// create-only: a second shipper of the same file (or a retry after a crash)
// finds the key taken and adopts what is there. No local state: the chain's
// end is found by listing. Specified in docs/manifest.md, "Shipping".
package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/pkg/manifest"
)

// Bucket is the part of an object store segments need; *s3cas.Store is one.
type Bucket interface {
	// PutKey stores body under key unless key exists (created false).
	PutKey(ctx context.Context, key string, body []byte) (created bool, err error)
	// GetKey returns the bytes under key, at most limit of them.
	GetKey(ctx context.Context, key string, limit int64) ([]byte, error)
	// ListKeys calls fn for every key starting with prefix, in key order.
	ListKeys(ctx context.Context, prefix string, fn func(key string) error) error
}

// MaxSegment bounds the manifest bytes sealed into one segment (about 100,000
// lines); a longer tail is shipped as several.
const MaxSegment = 32 << 20

// maxHeader bounds a segment's header line.
const maxHeader = 4 << 10

// Header is a segment's first line.
type Header struct {
	V         int    `json:"segment"`
	Origin    string `json:"origin"`
	Broadcast string `json:"broadcast"`
	Track     string `json:"track"`
	// Seq numbers the file's segments from 0.
	Seq uint64 `json:"seq"`
	// Offset and Length place the sealed bytes in the manifest file; a
	// segment starts where its predecessor ended.
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	// Prev is the BLAKE3 of the predecessor segment (header included), "" for
	// segment 0.
	Prev         string `json:"prev"`
	SealedUnixMs int64  `json:"sealed_unix_ms"`
}

// Dir is the key prefix of a track's segments from origin.
func Dir(origin, broadcast, track string) (string, error) {
	o, err := manifest.EscapeName(origin)
	if err != nil {
		return "", err
	}
	b, err := manifest.EscapeName(broadcast)
	if err != nil {
		return "", err
	}
	t, err := manifest.EscapeName(track)
	if err != nil {
		return "", err
	}
	return "manifests/" + o + "/" + b + "/" + t + "/", nil
}

func key(dir string, seq uint64) string { return fmt.Sprintf("%s%010d.jsonl", dir, seq) }

// tip is the end of a track's chain in the bucket.
type tip struct {
	next uint64 // sequence number of the next segment
	end  int64  // manifest offset sealed so far
	prev string // BLAKE3 of the last segment
}

// Shipper seals the manifests under a directory into a bucket. Its Ship is
// not safe for concurrent use; run one Shipper per manifest directory (a
// second one, even on another host, only finds its segments already there).
type Shipper struct {
	Bucket      Bucket
	ManifestDir string
	// Origin names this host in the keys (its hostname, or its shard name).
	Origin string
	tips   map[string]tip // by key prefix, once listed
}

// Ship seals the complete lines appended to every manifest file since its
// last segment. It returns the segments written; one file's failure does not
// stop the others, and all failures are returned joined.
func (s *Shipper) Ship(ctx context.Context) (int, error) {
	if s.tips == nil {
		s.tips = map[string]tip{}
	}
	tree, err := manifest.OpenTree(s.ManifestDir)
	if err != nil {
		return 0, fmt.Errorf("segment: %w", err)
	}
	// A link or special file is not shipped, never followed or opened: it is
	// reported, and the other files are shipped.
	var errs []error
	files, err := tree.Files("", func(err error) error {
		errs = append(errs, fmt.Errorf("segment: %w", err))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("segment: %w", err)
	}
	shipped := 0
	for _, rel := range files {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		n, err := s.shipFile(ctx, tree, rel)
		shipped += n
		if err != nil {
			errs = append(errs, fmt.Errorf("segment: ship %s: %w", tree.Path(rel), err))
		}
	}
	return shipped, errors.Join(errs...)
}

// shipFile seals the track file rel of tree.
func (s *Shipper) shipFile(ctx context.Context, tree *manifest.Tree, rel string) (int, error) {
	f, err := tree.Open(rel)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// The names come from the lines: the file name may be a hashed long form.
	first, err := readFirstLine(f)
	if err != nil || first == nil {
		return 0, err // empty file: nothing to ship yet
	}
	var e manifest.Entry
	if err := json.Unmarshal(first, &e); err != nil || e.Broadcast == "" || e.Track == "" {
		return 0, fmt.Errorf("first line names no broadcast and track")
	}
	dir, err := Dir(s.Origin, e.Broadcast, e.Track)
	if err != nil {
		return 0, err
	}
	t, ok := s.tips[dir]
	if !ok {
		if t, err = findTip(ctx, s.Bucket, dir); err != nil {
			return 0, err
		}
	}
	shipped := 0
	for {
		sealed, err := completeLines(f, t.end)
		if err != nil || len(sealed) == 0 {
			s.tips[dir] = t
			return shipped, err
		}
		h := Header{V: 1, Origin: s.Origin, Broadcast: e.Broadcast, Track: e.Track, Seq: t.next, Offset: t.end,
			Length: int64(len(sealed)), Prev: t.prev, SealedUnixMs: time.Now().UnixMilli()}
		body := encode(h, sealed)
		created, err := s.Bucket.PutKey(ctx, key(dir, t.next), body)
		if err != nil {
			s.tips[dir] = t
			return shipped, err
		}
		if !created {
			// Another shipper (or this one before a crash) sealed this
			// segment: continue from what the bucket holds.
			if t, err = findTip(ctx, s.Bucket, dir); err != nil {
				delete(s.tips, dir)
				return shipped, err
			}
			continue
		}
		shipped++
		t = tip{next: t.next + 1, end: t.end + int64(len(sealed)), prev: sum(body)}
	}
}

// findTip lists a track's segments and reads the last one.
func findTip(ctx context.Context, b Bucket, dir string) (tip, error) {
	var last string
	if err := b.ListKeys(ctx, dir, func(k string) error { last = k; return nil }); err != nil {
		return tip{}, err
	}
	if last == "" {
		return tip{}, nil
	}
	body, err := b.GetKey(ctx, last, maxHeader+MaxSegment)
	if err != nil {
		return tip{}, err
	}
	h, sealed, err := decode(body)
	if err != nil {
		return tip{}, fmt.Errorf("%s: %w", last, err)
	}
	if key(dir, h.Seq) != last {
		return tip{}, fmt.Errorf("%s: header says segment %d", last, h.Seq)
	}
	return tip{next: h.Seq + 1, end: h.Offset + int64(len(sealed)), prev: sum(body)}, nil
}

// completeLines returns the bytes of f from off up to its last "\n" (at most
// MaxSegment, cut after a line). A torn last line is left for a later Ship.
func completeLines(f *os.File, off int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < off {
		return nil, fmt.Errorf("the file is shorter (%d bytes) than its shipped segments (%d)", fi.Size(), off)
	}
	buf := make([]byte, min(fi.Size()-off, MaxSegment))
	n, err := f.ReadAt(buf, off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	buf = buf[:n]
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		if n == MaxSegment {
			return nil, fmt.Errorf("a line longer than %d bytes at offset %d", MaxSegment, off)
		}
		return nil, nil
	}
	return buf[:end+1], nil
}

func readFirstLine(f *os.File) ([]byte, error) {
	buf := make([]byte, manifest.MaxLine+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	i := bytes.IndexByte(buf[:n], '\n')
	if i < 0 {
		return nil, nil
	}
	return buf[:i], nil
}

func encode(h Header, sealed []byte) []byte {
	line, _ := json.Marshal(h)
	return append(append(line, '\n'), sealed...)
}

func decode(body []byte) (Header, []byte, error) {
	i := bytes.IndexByte(body, '\n')
	if i < 0 || i > maxHeader {
		return Header{}, nil, errors.New("no segment header line")
	}
	var h Header
	if err := json.Unmarshal(body[:i], &h); err != nil || h.V != 1 {
		return Header{}, nil, fmt.Errorf("bad segment header %q", body[:min(i, 200)])
	}
	sealed := body[i+1:]
	if int64(len(sealed)) != h.Length || len(sealed) > 0 && sealed[len(sealed)-1] != '\n' {
		return Header{}, nil, fmt.Errorf("segment %d: %d sealed bytes, header says %d", h.Seq, len(sealed), h.Length)
	}
	return h, sealed, nil
}

func sum(b []byte) string {
	s := blake3.Sum256(b)
	return fmt.Sprintf("%x", s[:])
}

// Fetch reads a track's segments back, checks the chain (numbered from 0 with
// no hole, each starting where its predecessor ended and naming its hash,
// each for this broadcast and track) and writes the manifest bytes they seal
// to w: the file as it was when the last segment was sealed.
func Fetch(ctx context.Context, b Bucket, origin, broadcast, track string, w io.Writer) (segments int, err error) {
	dir, err := Dir(origin, broadcast, track)
	if err != nil {
		return 0, err
	}
	var keys []string
	if err := b.ListKeys(ctx, dir, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return 0, err
	}
	want := tip{}
	for _, k := range keys {
		if k != key(dir, want.next) {
			return segments, fmt.Errorf("segment: %s: want segment %d (%s)", k, want.next, key(dir, want.next))
		}
		body, err := b.GetKey(ctx, k, maxHeader+MaxSegment)
		if err != nil {
			return segments, err
		}
		h, sealed, err := decode(body)
		if err != nil {
			return segments, fmt.Errorf("segment: %s: %w", k, err)
		}
		if h.Seq != want.next || h.Offset != want.end || h.Prev != want.prev || h.Origin != origin || h.Broadcast != broadcast || h.Track != track {
			return segments, fmt.Errorf("segment: %s breaks the chain: header %+v, want seq %d at offset %d after %q",
				k, h, want.next, want.end, want.prev)
		}
		if _, err := w.Write(sealed); err != nil {
			return segments, err
		}
		segments++
		want = tip{next: h.Seq + 1, end: h.Offset + h.Length, prev: sum(body)}
	}
	return segments, nil
}

// Tracks lists the (broadcast, track) pairs with segments from origin.
func Tracks(ctx context.Context, b Bucket, origin string) ([][2]string, error) {
	o, err := manifest.EscapeName(origin)
	if err != nil {
		return nil, err
	}
	prefix := "manifests/" + o + "/"
	var out [][2]string
	seen := map[string]bool{}
	err = b.ListKeys(ctx, prefix, func(k string) error {
		parts := strings.Split(strings.TrimPrefix(k, prefix), "/")
		if len(parts) != 3 || seen[parts[0]+"/"+parts[1]] {
			return nil
		}
		seen[parts[0]+"/"+parts[1]] = true
		body, err := b.GetKey(ctx, k, maxHeader+MaxSegment)
		if err != nil {
			return err
		}
		h, _, err := decode(body)
		if err != nil {
			return fmt.Errorf("segment: %s: %w", k, err)
		}
		out = append(out, [2]string{h.Broadcast, h.Track})
		return nil
	})
	return out, err
}
