package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/every-channel/ec-node/pkg/record"
)

// The pipeline's contract between stages: moq-sub's writer (record.Writer)
// writes exactly the headers cas-put's reader (record.Reader, the format's
// limits, any --max-payload) accepts, and every header that reader accepts
// yields a line that manifest-append's decoder (Decoder, ParseLine) accepts,
// and the entry comes out unchanged. These tests drive the library functions
// the commands call.

// casPutLimits are cas-put's limits with the largest --max-payload.
var casPutLimits = record.Limits{MaxPayload: math.MaxInt64, MaxHeaderLine: record.MaxHeaderLine,
	MaxName: record.MaxName, MaxFrames: record.MaxFrames}

// nameRunes are the characters names are made of: plain, those JSON escapes
// (quote, backslash, controls, U+2028/9, which grow the most when encoded),
// multi-byte ones, and those HTML escaping would touch.
var nameRunes = []rune("aZ09/._-~%:\"\\\n\r\t\x00\x01\x1f\x7f<>&é€😀\u2028\u2029\ufffd")

func randomName(rng *rand.Rand, maxBytes int) string {
	var b strings.Builder
	n := 1 + rng.IntN(maxBytes)
	for b.Len() < n {
		r := nameRunes[rng.IntN(len(nameRunes))]
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

var gapReasons = []string{record.GapDisconnected, record.GapReset, record.GapSkipped,
	record.GapTooLarge, record.GapStoreFailed, "some-future-reason-2"}

// randomHeader returns a header that passes Header.Check, with names up to
// maxName bytes and up to maxFrames frames.
func randomHeader(rng *rand.Rand, maxName, maxFrames int) record.Header {
	h := record.Header{V: record.Version, Broadcast: randomName(rng, maxName), Track: randomName(rng, maxName),
		ReceivedUnixMs: rng.Int64N(math.MaxInt64)}
	if rng.IntN(4) == 0 {
		h.Kind = record.KindGap
		h.First, h.Last = rng.Uint64(), rng.Uint64()
		if h.First > h.Last {
			h.First, h.Last = h.Last, h.First
		}
		h.Reason = gapReasons[rng.IntN(len(gapReasons))]
		return h
	}
	h.Kind = record.KindGroup
	h.Group = rng.Uint64()
	n := rng.IntN(maxFrames + 1)
	for range n {
		f := int64(rng.IntN(3))
		if rng.IntN(200) == 0 {
			f = rng.Int64N(4 << 20) // large frames cost payload bytes: rare
		}
		h.Frames = append(h.Frames, f)
		h.Size += f
	}
	if n > 0 && rng.IntN(2) == 0 {
		h.Timescale = 1 + rng.Uint64N(math.MaxUint64)
		for range n {
			ts := rng.Int64() >> rng.IntN(64) // of any number of digits
			if rng.IntN(2) == 0 {
				ts = -ts
			}
			h.Timestamps = append(h.Timestamps, ts)
		}
	}
	return h
}

// edgeHeader returns a group header with the most frames, all timestamped,
// whose encoding is within a few KiB of MaxHeaderLine, either side; its
// broadcast name, of any characters, fills the line to that length.
func edgeHeader(t testing.TB, rng *rand.Rand) record.Header {
	h := randomHeader(rng, 256, 0)
	h.Kind, h.First, h.Last, h.Reason = record.KindGroup, 0, 0, ""
	h.Timescale = 1 + rng.Uint64N(math.MaxUint64)
	h.Frames, h.Timestamps = make([]int64, record.MaxFrames), make([]int64, record.MaxFrames)
	for i := range h.Timestamps {
		h.Timestamps[i] = rng.Int64N(1e12) // 1 to 12 digits
	}
	target := record.MaxHeaderLine + rng.IntN(4096) - 3072
	h.Broadcast = ""
	room := target - len(headerLine(t, h)) // the empty name's "" stays
	for i := 0; room < 2*record.MaxName/3; i++ {
		room += len(strconv.FormatInt(h.Timestamps[i], 10)) - 1
		h.Timestamps[i] = 0
	}
	encodedLen := make(map[rune]int, len(nameRunes)) // of each rune in a JSON string
	for _, r := range nameRunes {
		encodedLen[r] = len(headerLine(t, record.Header{Broadcast: string(r)})) - len(headerLine(t, record.Header{}))
	}
	var name strings.Builder
	for room > 6 { // the longest encoding of a rune, \u0001
		r := nameRunes[rng.IntN(len(nameRunes))]
		name.WriteRune(r)
		room -= encodedLen[r]
	}
	name.WriteString(strings.Repeat("b", room))
	h.Broadcast = name.String()
	return h
}

// rawLine is h's header line spelled as another writer might: U+2028/9 left
// unescaped (shorter than record.Writer's), other non-ASCII characters as
// \u escapes (longer), white space after commas.
func rawLine(t testing.TB, rng *rand.Rand, h record.Header) []byte {
	t.Helper()
	line := headerLine(t, h)
	switch rng.IntN(4) {
	case 0:
		line = bytes.ReplaceAll(line, []byte(`\u2028`), []byte("\u2028"))
		line = bytes.ReplaceAll(line, []byte(`\u2029`), []byte("\u2029"))
	case 1:
		for _, r := range "é€\ufffd" {
			line = bytes.ReplaceAll(line, []byte(string(r)), fmt.Appendf(nil, `\u%04x`, r))
		}
	case 2:
		line = bytes.ReplaceAll(line, []byte(`,"`), []byte(`, "`))
	}
	return line
}

// headerLine is h's header line as record.Writer writes it, without "\n".
func headerLine(t testing.TB, h record.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := record.EncodeLine(&buf, h); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[:buf.Len()-1]
}

// zeros is an endless stream of zero bytes, for payloads.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// recordOf is a record stream of a header line and a payload of size bytes.
func recordOf(raw []byte, size int64) io.Reader {
	return io.MultiReader(bytes.NewReader(raw), strings.NewReader("\n"),
		io.LimitReader(zeros{}, size), strings.NewReader("\n"))
}

// moqSub writes h as moq-sub does; the record is nil if the writer refuses it.
func moqSub(t testing.TB, h record.Header) []byte {
	var buf bytes.Buffer
	w := record.NewWriter(&buf)
	var err error
	if h.Kind == record.KindGap {
		err = w.WriteGap(h)
	} else {
		err = w.WriteGroup(h, io.LimitReader(zeros{}, h.Size))
	}
	if err != nil {
		if !errors.Is(err, record.ErrMalformed) || buf.Len() > 0 {
			t.Fatalf("writer: %v after %d bytes, want ErrMalformed before writing", err, buf.Len())
		}
		return nil
	}
	return buf.Bytes()
}

// casPut reads one record as cas-put does and returns the line it would
// print; ok is false if the reader rejects the record.
func casPut(t testing.TB, rng *rand.Rand, stream io.Reader) (line []byte, h record.Header, ok bool) {
	t.Helper()
	rd, err := record.NewReader(stream, casPutLimits)
	if err != nil {
		t.Fatal(err)
	}
	h, payload, err := rd.Next()
	if err != nil {
		if !errors.Is(err, record.ErrMalformed) {
			t.Fatalf("reader: %v, want ErrMalformed", err)
		}
		return nil, h, false
	}
	if _, err := io.Copy(io.Discard, payload); err != nil {
		t.Fatalf("payload of an accepted header: %v", err)
	}
	e := Entry{Header: h}
	if h.Kind == record.KindGroup {
		var id cas.ID
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		isNew := rng.IntN(2) == 0
		e.BLAKE3, e.Path, e.New = id.String(), cas.ObjectPath(id), &isNew
	}
	line, err = AppendLine(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	return line, h, true
}

// manifestAppend decodes cas-put's output as manifest-append does.
func manifestAppend(line []byte) (Entry, error) {
	e, err := NewDecoder(bytes.NewReader(line)).Next()
	if err != nil {
		return Entry{}, err
	}
	// What manifest-append writes to the file (without new) reads back too.
	e.New = nil
	file, err := AppendLine(nil, e)
	if err != nil {
		return Entry{}, err
	}
	if _, err := NewDecoder(bytes.NewReader(file)).Next(); err != nil {
		return Entry{}, fmt.Errorf("file line: %w", err)
	}
	return e, nil
}

func TestStagesAgreeOnLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 2026))
	var accepted, rejected, nearLimit, refused int
	longest := 0
	const cases, edgeEvery = 3000, 150
	for i := range cases {
		h := randomHeader(rng, 64, 8)
		if i%edgeEvery == 0 {
			h = edgeHeader(t, rng)
		}
		if err := h.Check(); err != nil {
			t.Fatalf("case %d: generator made an invalid header: %v", i, err)
		}
		// moq-sub to cas-put: the writer writes exactly what the reader accepts.
		if written := moqSub(t, h); written != nil {
			if _, _, ok := casPut(t, rng, bytes.NewReader(written)); !ok {
				t.Fatalf("case %d: cas-put rejected a record moq-sub wrote", i)
			}
		} else if _, _, ok := casPut(t, rng, recordOf(headerLine(t, h), h.Size)); ok {
			t.Fatalf("case %d: moq-sub refused a header cas-put accepts", i)
		} else {
			refused++
		}
		// cas-put to manifest-append, from a line spelled by any writer.
		line, got, ok := casPut(t, rng, recordOf(rawLine(t, rng, h), h.Size))
		if !ok {
			rejected++
			continue
		}
		accepted++
		longest = max(longest, len(line)-1)
		if len(line)-1 > MaxLine-record.MaxName {
			nearLimit++
		}
		want := h
		if len(want.Frames) == 0 {
			want.Frames = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: reader changed the header:\n got %+v\nwant %+v", i, got, want)
		}
		e, err := manifestAppend(line)
		if err != nil {
			t.Fatalf("case %d: cas-put line of %d bytes (MaxLine %d) rejected by manifest-append: %v", i, len(line)-1, MaxLine, err)
		}
		if !reflect.DeepEqual(e.Header, got) {
			t.Fatalf("case %d: manifest-append changed the header", i)
		}
	}
	t.Logf("%d accepted (%d within %d bytes of MaxLine, longest %d), %d rejected; moq-sub refused %d",
		accepted, nearLimit, record.MaxName, longest, rejected, refused)
	if rejected == 0 || nearLimit == 0 || refused == 0 {
		t.Fatalf("the generator missed the limit: %d rejected, %d accepted near it, %d refused", rejected, nearLimit, refused)
	}
}

// TestLargestHeader is the edge: a header whose encoding is exactly
// record.MaxHeaderLine bytes is accepted by both stages (its cas-put line, with
// "new":false, is exactly MaxLine bytes); one byte more is rejected by cas-put.
func TestLargestHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	h := record.Header{V: record.Version, Kind: record.KindGroup, Broadcast: "b", Track: strings.Repeat("\u2028", record.MaxName/3),
		Group: math.MaxUint64, Timescale: math.MaxUint64, ReceivedUnixMs: math.MaxInt64}
	for range record.MaxFrames {
		h.Frames = append(h.Frames, 0)
		h.Timestamps = append(h.Timestamps, math.MinInt64)
	}
	encoded := func(h record.Header) int { return len(headerLine(t, h)) }
	// Shorten timestamps (MinInt64 to 0: 19 bytes each) to leave room for a
	// broadcast name, then pad the name to the byte.
	excess := encoded(h) - (record.MaxHeaderLine - record.MaxName/2)
	for i := range (excess + 18) / 19 {
		h.Timestamps[i] = 0
	}
	h.Broadcast = strings.Repeat("b", record.MaxHeaderLine-encoded(h)+1)
	if n := encoded(h); n != record.MaxHeaderLine || len(h.Broadcast) > record.MaxName {
		t.Fatalf("test header encodes to %d bytes with a %d-byte name", n, len(h.Broadcast))
	}
	isNew := false
	line, _, ok := casPut(t, rng, recordOf(headerLine(t, h), 0))
	if !ok {
		t.Fatal("cas-put rejected the largest header")
	}
	e, err := manifestAppend(line)
	if err != nil {
		t.Fatalf("manifest-append rejected the line for the largest header: %v", err)
	}
	e.New = &isNew
	if full, _ := AppendLine(nil, e); len(full)-1 != MaxLine {
		t.Fatalf("largest cas-put line is %d bytes, MaxLine %d", len(full)-1, MaxLine)
	}

	h.Broadcast += "b"
	if _, _, ok := casPut(t, rng, recordOf(headerLine(t, h), 0)); ok {
		t.Fatal("cas-put accepted a header one byte over the limit")
	}
	// Written with U+2028 unescaped, the line is shorter than the limit, but its
	// encoding is not.
	raw := bytes.ReplaceAll(headerLine(t, h), []byte(`\u2028`), []byte("\u2028"))
	if len(raw) > record.MaxHeaderLine {
		t.Fatalf("raw line %d bytes", len(raw))
	}
	if _, _, ok := casPut(t, rng, recordOf(raw, 0)); ok {
		t.Fatal("cas-put accepted a short line whose encoding is over the limit")
	}
}
