package export

import (
	"encoding/binary"
	"strings"
	"testing"
)

// box builds a box of type typ around body.
func box(typ string, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(8+len(b)))
	return append(append(out, typ...), b...)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// TestCheckMoof: a moof mp4ff could misread (a box whose size is not its
// content's) or allocate without bound for (a huge sample count) is refused
// before decoding; a CMAF-shaped one passes.
func TestCheckMoof(t *testing.T) {
	mfhd := box("mfhd", u32(0), u32(7))
	tfhd := box("tfhd", u32(0x020000), u32(1)) // default-base-is-moof, track 1
	tfdt := box("tfdt", u32(0), u32(1000))
	trun := func(flags, count uint32, entries int) []byte {
		return box("trun", u32(flags), u32(count), make([]byte, entries))
	}
	moof := func(traf ...[]byte) []byte { return box("moof", mfhd, box("traf", traf...)) }
	cases := []struct {
		name string
		moof []byte
		bad  string // substring of the error; "" means accepted
	}{
		{"CMAF fragment", moof(tfhd, tfdt, trun(0x301, 2, 4+16)), ""},
		{"with sdtp", moof(tfhd, tfdt, trun(0x100, 1, 4), box("sdtp", u32(0), []byte{0})), ""},
		{"trun claiming more samples than its bytes", moof(tfhd, tfdt, trun(0x300, 3, 16)), "trun of 3 samples"},
		{"trun with no per-sample fields and a huge count", moof(tfhd, tfdt, trun(0, 0xffffffff, 0)), "more than"},
		{"mfhd declaring more than its fields", box("moof", box("mfhd", u32(0), u32(7), make([]byte, 32))), "mfhd: 40 bytes, want 8"},
		{"tfdt of the wrong size", moof(tfhd, box("tfdt", u32(0x01000000), u32(1000)), trun(0, 0, 0)), "tfdt: 8 bytes, want 12"},
		{"box unknown to CMAF in traf", moof(tfhd, tfdt, box("saiz", u32(0), []byte{0}, u32(1<<31))), `unsupported "saiz"`},
		{"child larger than its parent", box("moof", append(u32(64), "mfhd"...)), "size 64 outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMoof(tc.moof)
			switch {
			case tc.bad == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Fatalf("got %v, want an error with %q", err, tc.bad)
			}
		})
	}
}
