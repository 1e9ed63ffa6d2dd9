package wire

import "fmt"

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
	d := decoder{b: body}
	m := AnnouncePlease{Prefix: d.path()}
	if v.HasExcludeHop() {
		m.ExcludeHop = d.varint()
	}
	return m, d.finish("announce please")
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
	d := decoder{b: body}
	m := AnnounceOK{Origin: d.varint(), Active: d.varint()}
	return m, d.finish("announce ok")
}

// AnnounceStatus says whether a broadcast appeared or went away.
type AnnounceStatus uint8

const (
	AnnounceEnded  AnnounceStatus = 0
	AnnounceActive AnnounceStatus = 1
	// AnnounceRestart (lite-05) replaces an announced broadcast; moq-net also
	// signals a restart as a second Active for the same path.
	AnnounceRestart AnnounceStatus = 2
)

// Announce (moq-net ANNOUNCE_BROADCAST) reports one broadcast under the
// requested prefix. Lite-03 carries only the hop count: Hops then holds that
// many zero (unknown) ids.
type Announce struct {
	Status AnnounceStatus
	Suffix string
	Hops   []uint64
}

func (m Announce) Append(b []byte, v Version) ([]byte, error) {
	if err := v.check(); err != nil {
		return b, err
	}
	return appendMessage(b, "announce", MaxMessageSize, func(e *encoder) {
		if err := checkStatus(m.Status, v); err != nil {
			e.err = err
		}
		if len(m.Hops) > MaxHops {
			e.err = fmt.Errorf("%d hops: %w", len(m.Hops), ErrTooLarge)
		}
		e.u8(uint8(m.Status))
		e.path(m.Suffix)
		e.varint(uint64(len(m.Hops)))
		if v.HasHopList() {
			for _, h := range m.Hops {
				e.varint(h)
			}
		}
	})
}

func ReadAnnounce(r Reader, v Version) (Announce, error) {
	body, err := readMessage(r, "announce", MaxMessageSize)
	if err != nil {
		return Announce{}, err
	}
	d := decoder{b: body}
	m := Announce{Status: AnnounceStatus(d.u8())}
	if d.err == nil {
		d.fail(checkStatus(m.Status, v))
	}
	m.Suffix = d.path()
	n := d.varint()
	if d.err == nil && n > MaxHops {
		d.fail(fmt.Errorf("%d hops: %w", n, ErrTooLarge))
	}
	if d.err == nil {
		m.Hops = make([]uint64, n)
	}
	if v.HasHopList() {
		for i := range m.Hops {
			m.Hops[i] = d.varint()
			// A chain that revisits a hop is a loop; moq-net rejects it.
			for _, prev := range m.Hops[:i] {
				if d.err == nil && m.Hops[i] != 0 && prev == m.Hops[i] {
					d.fail(fmt.Errorf("hop %d repeated: %w", prev, ErrInvalid))
				}
			}
		}
	}
	return m, d.finish("announce")
}

func checkStatus(s AnnounceStatus, v Version) error {
	if s == AnnounceEnded || s == AnnounceActive || (s == AnnounceRestart && v >= Lite05) {
		return nil
	}
	return fmt.Errorf("announce status %d: %w", s, ErrInvalid)
}
