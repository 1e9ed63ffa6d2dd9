package export

import "fmt"

// Span returns the decode time of the first fragment of a CMAF group payload
// and the summed duration of its fragments, in the timescale of init (a
// single-track init segment, as a catalog holds for a cmaf rendition).
// archive-serve uses it for segment durations when a manifest line has no
// per-frame timestamps.
func Span(init, payload []byte) (start, duration uint64, timescale uint32, err error) {
	ti, err := parseInit(init)
	if err != nil {
		return 0, 0, 0, err
	}
	frags, err := parseFragments(payload, ti.trex)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("not cmaf: %w", err)
	}
	if len(frags) == 0 {
		return 0, 0, 0, fmt.Errorf("not cmaf: no fragment")
	}
	for _, f := range frags {
		duration += f.duration
	}
	return frags[0].decode, duration, ti.timescale, nil
}
