package wire

import (
	"fmt"
	"sort"
	"unicode/utf8"
)

// SETUP parameter ids (lite-05, moq-net lite/setup.rs).
const (
	ParamProbe = 0x1
	ParamPath  = 0x2 // client only, and only on transports without a URL: never over WebTransport
	ParamRole  = 0x3
	ParamCost  = 0x4
	ParamHop   = 0x5
)

// Roles a client may declare in SETUP. RoleSubscriber tells moq-relay to wire
// only its publishing half, so it opens no announce stream toward us.
const (
	RoleBoth       = 0 // absent on the wire
	RolePublisher  = 1
	RoleSubscriber = 2
)

// Setup is the lite-05/06 SETUP message (same layout in both), the only message on a SETUP uni stream.
// Zero fields are absent on the wire. Unknown parameters are ignored on decode.
type Setup struct {
	Probe   uint64
	Role    uint64
	Cost    uint64
	HasCost bool
	Hop     uint64
	Path    string
	HasPath bool
}

// Append appends the length-delimited SETUP message (without the stream type).
func (m Setup) Append(b []byte, v Version) ([]byte, error) {
	if !v.HasSetup() {
		return b, fmt.Errorf("encode setup: %w", ErrVersion)
	}
	params := map[uint64][]byte{}
	varintParam := func(id, val uint64) {
		params[id], _ = AppendVarint(nil, val)
	}
	if m.Probe != 0 {
		varintParam(ParamProbe, m.Probe)
	}
	if m.HasPath {
		params[ParamPath] = []byte(m.Path)
	}
	if m.Role != RoleBoth {
		varintParam(ParamRole, m.Role)
	}
	if m.HasCost {
		varintParam(ParamCost, m.Cost)
	}
	if m.Hop != 0 {
		varintParam(ParamHop, m.Hop)
	}
	ids := make([]uint64, 0, len(params))
	for id := range params {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return appendMessage(b, "setup", MaxSetupSize, func(e *encoder) {
		for _, val := range []uint64{m.Probe, m.Role, m.Cost, m.Hop} {
			if val > MaxVarint {
				e.err = fmt.Errorf("parameter %d: %w", val, ErrTooLarge)
			}
		}
		e.varint(uint64(len(ids)))
		for _, id := range ids {
			e.varint(id)
			e.str(string(params[id]), MaxSetupSize)
		}
	})
}

// ReadSetup reads a SETUP message (after the stream type).
func ReadSetup(r Reader, v Version) (Setup, error) {
	if !v.HasSetup() {
		return Setup{}, fmt.Errorf("decode setup: %w", ErrVersion)
	}
	body, err := readMessage(r, "setup", MaxSetupSize)
	if err != nil {
		return Setup{}, err
	}
	d := Decoder{b: body}
	var m Setup
	count := d.Varint()
	if d.err == nil && count > MaxParams {
		d.Fail(fmt.Errorf("%d parameters: %w", count, ErrTooLarge))
	}
	seen := map[uint64]bool{}
	for i := uint64(0); i < count && d.err == nil; i++ {
		id := d.Varint()
		val := d.Bytes(MaxSetupSize)
		if d.err != nil {
			break
		}
		if seen[id] {
			d.Fail(fmt.Errorf("parameter %d repeated: %w", id, ErrInvalid))
			break
		}
		seen[id] = true
		switch id {
		case ParamProbe:
			m.Probe = d.paramVarint(val)
		case ParamRole:
			m.Role = d.paramVarint(val)
		case ParamCost:
			m.Cost, m.HasCost = d.paramVarint(val), true
		case ParamHop:
			m.Hop = d.paramVarint(val)
		case ParamPath:
			if !utf8.Valid(val) {
				d.Fail(fmt.Errorf("path is not UTF-8: %w", ErrInvalid))
			}
			m.Path, m.HasPath = string(val), true
		}
	}
	return m, d.Finish("setup")
}

// paramVarint decodes a parameter value that must be exactly one varint.
func (d *Decoder) paramVarint(val []byte) uint64 {
	inner := Decoder{b: val}
	n := inner.Varint()
	if inner.err == nil && len(inner.b) > 0 {
		inner.err = fmt.Errorf("parameter value: %w", ErrTrailingBytes)
	}
	d.Fail(inner.err)
	return n
}
