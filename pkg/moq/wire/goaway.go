package wire

import "fmt"

// Goaway (lite-04+) asks the peer to stop opening streams and move to URI
// (empty: reconnect to the same place).
type Goaway struct {
	URI string
}

func (m Goaway) Append(b []byte, v Version) ([]byte, error) {
	if !v.HasGoaway() {
		return b, fmt.Errorf("encode goaway: %w", ErrVersion)
	}
	return appendMessage(b, "goaway", MaxMessageSize, func(e *encoder) {
		e.str(m.URI, MaxStringLength)
	})
}

func ReadGoaway(r Reader, v Version) (Goaway, error) {
	if !v.HasGoaway() {
		return Goaway{}, fmt.Errorf("decode goaway: %w", ErrVersion)
	}
	body, err := readMessage(r, "goaway", MaxMessageSize)
	if err != nil {
		return Goaway{}, err
	}
	d := Decoder{b: body}
	m := Goaway{URI: d.Str(MaxStringLength)}
	return m, d.Finish("goaway")
}
