package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"
)

// MSFTrackName is the track that carries an MSF catalog (draft-ietf-moq-msf,
// "Catalog"): publishers speaking the IETF MOQT Streaming Format put it where
// hang publishers put catalog.json.
const MSFTrackName = "catalog"

// msfDocument is the part of an MSF catalog the archiver reads. draft-00 sends
// "version" as a number, draft-01 as a string; both are taken. Unknown fields
// are ignored, as the draft asks of consumers.
type msfDocument struct {
	Version     json.RawMessage `json:"version"`
	DeltaUpdate *bool           `json:"deltaUpdate"`
	Tracks      *[]msfTrack     `json:"tracks"`
}

type msfTrack struct {
	Name      *string `json:"name"`
	Namespace *string `json:"namespace"`
	Packaging *string `json:"packaging"`
}

// ParseMSF decodes an independent MSF catalog object (the first object of a
// group of the MSF catalog track) of the broadcast named broadcast. Tracks in
// another namespace are skipped. A delta update is an error: it only makes
// sense applied to the independent catalog before it, and the next group of
// the catalog track starts with a full one again.
func ParseMSF(data []byte, broadcast string) (*Catalog, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("msf catalog: %d bytes exceeds the %d byte limit", len(data), MaxSize)
	}
	if !utf8.Valid(data) {
		// encoding/json would replace the bad bytes, and so rename a track.
		return nil, fmt.Errorf("msf catalog: not valid UTF-8")
	}
	var doc msfDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("msf catalog: %w", err)
	}
	if err := msfVersion(doc.Version); err != nil {
		return nil, err
	}
	if doc.DeltaUpdate != nil && *doc.DeltaUpdate {
		return nil, fmt.Errorf("msf catalog: a delta update where an independent catalog belongs")
	}
	if doc.Tracks == nil {
		return nil, fmt.Errorf("msf catalog: no tracks array")
	}
	if n := len(*doc.Tracks); n > MaxTracks {
		return nil, fmt.Errorf("msf catalog: %d tracks exceeds the limit of %d", n, MaxTracks)
	}
	c := &Catalog{Init: map[string][]byte{}, Container: map[string]string{}, Skipped: map[string]string{}}
	seen := map[string]bool{}
	for i, t := range *doc.Tracks {
		if t.Name == nil {
			return nil, fmt.Errorf("msf catalog: track %d has no name", i)
		}
		name := *t.Name
		if why := c.addMSF(name, t, broadcast); why != "" {
			c.Skipped[name] = why
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("msf catalog: track %q listed twice", name)
		}
		seen[name] = true
		c.Tracks = append(c.Tracks, name)
	}
	sort.Strings(c.Tracks)
	return c, nil
}

// msfVersion accepts draft-00's numeric version 1 and draft-01's string form.
func msfVersion(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return fmt.Errorf("msf catalog: no version")
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil && s != "" && len(s) <= 64 {
		return nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if v, err := n.Int64(); err == nil && v >= 1 {
			return nil
		}
	}
	return fmt.Errorf("msf catalog: version %.64s is neither a positive integer nor a short string", raw)
}

// addMSF records a track's container and returns why it is skipped, or "".
// Init data (draft-00's inline initData, draft-01's initRef into
// initDataList) is not read: export takes init segments from catalog.json.
func (c *Catalog) addMSF(name string, t msfTrack, broadcast string) string {
	if !validName(name) {
		return "invalid track name"
	}
	if t.Namespace != nil && *t.Namespace != broadcast {
		return fmt.Sprintf("track lives in namespace %q", *t.Namespace)
	}
	packaging := ""
	if t.Packaging != nil {
		packaging = *t.Packaging
	}
	switch packaging {
	case "cmaf", "loc", "legacy":
		c.Container[name] = packaging
	}
	// Timelines and packagings this archiver does not know are archived all
	// the same (as opaque groups); export only reads the containers it knows.
	return ""
}
