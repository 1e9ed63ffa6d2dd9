package wire

import (
	"fmt"
	"io"
)

// AnnouncePlease (moq-net AnnounceRequest) asks for the broadcasts under Prefix.
// ExcludeHop exists on lite-04 and -05 only; 0 means none.
type AnnouncePlease struct {
	Prefix     string
	ExcludeHop uint64
}

func (m AnnouncePlease) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	return appendMessage(b, "announce please", MaxMessageSize, func(e *encoder) {
		e.path(m.Prefix)
		if v.HasExcludeHop() {
			e.varint(m.ExcludeHop)
		}
	})
}

func ReadAnnouncePlease(r Reader, v Version) (AnnouncePlease, error) {
	body, err := readMessage(r, "announce please", MaxMessageSize)
	if err != nil {
		return AnnouncePlease{}, err
	}
	d := Decoder{b: body}
	m := AnnouncePlease{Prefix: d.path()}
	if v.HasExcludeHop() {
		m.ExcludeHop = d.Varint()
	}
	return m, d.Finish("announce please")
}

// AnnounceOK opens a lite-05 announce stream: the responder's hop id and the
// number of ANNOUNCE messages in the initial set that follows.
type AnnounceOK struct {
	Origin uint64
	Active uint64
}

func (m AnnounceOK) Append(b []byte, v Version) ([]byte, error) {
	if !v.HasAnnounceOK() {
		return b, fmt.Errorf("encode announce ok: %w", ErrVersion)
	}
	return appendMessage(b, "announce ok", MaxMessageSize, func(e *encoder) {
		e.varint(m.Origin)
		e.varint(m.Active)
	})
}

func ReadAnnounceOK(r Reader, v Version) (AnnounceOK, error) {
	if !v.HasAnnounceOK() {
		return AnnounceOK{}, fmt.Errorf("decode announce ok: %w", ErrVersion)
	}
	body, err := readMessage(r, "announce ok", MaxMessageSize)
	if err != nil {
		return AnnounceOK{}, err
	}
	d := Decoder{b: body}
	m := AnnounceOK{Origin: d.Varint(), Active: d.Varint()}
	return m, d.Finish("announce ok")
}

// AnnounceStatus says whether a broadcast appeared or went away.
type AnnounceStatus uint8

const (
	AnnounceEnded  AnnounceStatus = 0
	AnnounceActive AnnounceStatus = 1
	// AnnounceRestart (lite-05 and later) replaces an announced broadcast;
	// moq-net also signals a lite-05 restart as a second Active for the same path.
	AnnounceRestart AnnounceStatus = 2
)

// Lite-06 announce message types, each followed by a length-delimited body.
// They match the status values, but travel before the length, not inside it.
const (
	announceStart   = 0
	announceEnd     = 1
	announceRestart = 2
)

// Announce (moq-net ANNOUNCE_BROADCAST) reports one broadcast under the
// requested prefix. Lite-03 carries only the hop count: Hops then holds that
// many zero (unknown) ids.
//
// On lite-06 it is one of three typed messages: ANNOUNCE_START (Active: Suffix,
// Hops, Cost) implicitly takes the stream's next announce id, counting from 0;
// ANNOUNCE_END (Ended: ID) and ANNOUNCE_RESTART (Restart: ID, Hops, Cost) name
// that id instead of the path. The codec keeps no state: the caller maps ids to
// paths. Messages of an unknown type are skipped by length, as moq-net does.
type Announce struct {
	Status AnnounceStatus
	Suffix string
	Hops   []uint64
	ID     uint64    // lite-06 Ended and Restart
	Cost   RouteCost // lite-06 Active and Restart
}

// RouteCost (lite-06) is the price of pulling a broadcast over a route: while
// the relay already has it (Warm) and when it must fetch it first (Cold).
type RouteCost struct {
	Warm, Cold uint64
}

func (m Announce) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	if err := checkStatus(m.Status, v); err != nil {
		return b, fmt.Errorf("encode announce: %w", err)
	}
	if v.HasAnnounceIDs() {
		return m.appendTyped(b, v)
	}
	return appendMessage(b, "announce", MaxMessageSize, func(e *encoder) {
		if m.ID != 0 || m.Cost != (RouteCost{}) {
			e.fail(fmt.Errorf("announce id or cost on %s: %w", v, ErrVersion))
		}
		e.u8(uint8(m.Status))
		e.path(m.Suffix)
		e.hops(m.Hops, v)
	})
}

// appendTyped appends a lite-06 announce: type, then the length-delimited body.
func (m Announce) appendTyped(b []byte, v Version) ([]byte, error) {
	typ := uint64(announceStart)
	switch m.Status {
	case AnnounceEnded:
		typ = announceEnd
	case AnnounceRestart:
		typ = announceRestart
	}
	b, _ = AppendVarint(b, typ)
	return appendMessage(b, "announce", MaxMessageSize, func(e *encoder) {
		if m.Status == AnnounceActive {
			if m.ID != 0 {
				e.fail(fmt.Errorf("announce start carries no id: %w", ErrInvalid))
			}
			e.path(m.Suffix)
		} else {
			if m.Suffix != "" {
				e.fail(fmt.Errorf("announce end or restart carries no path: %w", ErrInvalid))
			}
			e.varint(m.ID)
		}
		if m.Status == AnnounceEnded {
			if len(m.Hops) > 0 || m.Cost != (RouteCost{}) {
				e.fail(fmt.Errorf("announce end carries no hops or cost: %w", ErrInvalid))
			}
			return
		}
		e.hops(m.Hops, v)
		e.varint(m.Cost.Warm)
		e.varint(m.Cost.Cold)
	})
}

func (e *encoder) hops(hops []uint64, v Version) {
	if len(hops) > MaxHops {
		e.fail(fmt.Errorf("%d hops: %w", len(hops), ErrTooLarge))
	}
	e.varint(uint64(len(hops)))
	if v.HasHopList() {
		for _, h := range hops {
			e.varint(h)
		}
	}
}

func ReadAnnounce(r Reader, v Version) (Announce, error) {
	if v.HasAnnounceIDs() {
		return readTypedAnnounce(r, v)
	}
	body, err := readMessage(r, "announce", MaxMessageSize)
	if err != nil {
		return Announce{}, err
	}
	d := Decoder{b: body}
	m := Announce{Status: AnnounceStatus(d.U8())}
	if d.err == nil {
		d.Fail(checkStatus(m.Status, v))
	}
	m.Suffix = d.path()
	m.Hops = d.hops(v)
	return m, d.Finish("announce")
}

// readTypedAnnounce reads lite-06 announces until one of a known type.
func readTypedAnnounce(r Reader, v Version) (Announce, error) {
	for {
		typ, err := ReadVarint(r)
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("decode announce type: %w", err)
			}
			return Announce{}, err
		}
		body, err := readMessage(r, "announce", MaxMessageSize)
		if err != nil {
			return Announce{}, noEOF(err)
		}
		d := Decoder{b: body}
		var m Announce
		switch typ {
		case announceStart:
			m = Announce{Status: AnnounceActive, Suffix: d.path(), Hops: d.hops(v)}
			m.Cost = RouteCost{Warm: d.Varint(), Cold: d.Varint()}
		case announceEnd:
			m = Announce{Status: AnnounceEnded, ID: d.Varint()}
		case announceRestart:
			m = Announce{Status: AnnounceRestart, ID: d.Varint(), Hops: d.hops(v)}
			m.Cost = RouteCost{Warm: d.Varint(), Cold: d.Varint()}
		default:
			continue // a later draft's message: skipped, the stream stays up
		}
		return m, d.Finish("announce")
	}
}

// hops reads a hop chain: its count, then (lite-04 and later) the ids.
func (d *Decoder) hops(v Version) []uint64 {
	n := d.Varint()
	if d.err == nil && n > MaxHops {
		d.Fail(fmt.Errorf("%d hops: %w", n, ErrTooLarge))
	}
	if d.err != nil {
		return nil
	}
	hops := make([]uint64, n)
	if v.HasHopList() {
		for i := range hops {
			hops[i] = d.Varint()
			// A chain that revisits a hop is a loop; moq-net rejects it.
			for _, prev := range hops[:i] {
				if d.err == nil && hops[i] != 0 && prev == hops[i] {
					d.Fail(fmt.Errorf("hop %d repeated: %w", prev, ErrInvalid))
				}
			}
		}
	}
	return hops
}

func checkStatus(s AnnounceStatus, v Version) error {
	if s == AnnounceEnded || s == AnnounceActive || (s == AnnounceRestart && v >= Lite05) {
		return nil
	}
	return fmt.Errorf("announce status %d: %w", s, ErrInvalid)
}
