// Package catalog reads the hang catalog that MoQ publishers put on the
// "catalog.json" track: one JSON document per group naming the broadcast's media
// tracks (renditions) and, for CMAF, their init segments.
//
// Only what the archiver needs is decoded; unknown sections and fields are ignored,
// as the hang format asks of consumers.
package catalog

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"
)

// TrackName is the track that carries the catalog.
const TrackName = "catalog.json"

// Limits on a catalog from the network.
const (
	// MaxSize bounds one catalog document. Real catalogs are a few KiB; CMAF init
	// segments (base64) add a few KiB per rendition.
	MaxSize = 4 << 20
	// MaxTracks bounds the renditions taken from one catalog (hang's own limit is 64).
	MaxTracks = 256
	// MaxTrackName bounds a track name.
	MaxTrackName = 1024
)

// Catalog is the archiver's view of one catalog document.
type Catalog struct {
	// Tracks are the media tracks of this broadcast, sorted and unique.
	Tracks []string
	// Init holds the CMAF init segment (ftyp+moov) of each track that has one.
	Init map[string][]byte
	// Container is the container kind of each rendition taken: "cmaf", "legacy"
	// (also when the catalog names none) or "loc".
	Container map[string]string
	// Skipped lists renditions that are not archived, with the reason (another
	// broadcast, unknown container, bad name).
	Skipped map[string]string
}

type rendition struct {
	Broadcast *string          `json:"broadcast"`
	Container *json.RawMessage `json:"container"`
}

type section struct {
	Renditions map[string]rendition `json:"renditions"`
}

type document struct {
	Video   json.RawMessage `json:"video"`
	Audio   json.RawMessage `json:"audio"`
	Text    json.RawMessage `json:"text"`
	Archive *struct {
		Track string `json:"track"`
	} `json:"archive"`
}

// Parse decodes a catalog document.
func Parse(data []byte) (*Catalog, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("catalog: %d bytes exceeds the %d byte limit", len(data), MaxSize)
	}
	var doc document
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c := &Catalog{Init: map[string][]byte{}, Container: map[string]string{}, Skipped: map[string]string{}}
	seen := map[string]bool{}
	for _, raw := range []json.RawMessage{doc.Video, doc.Audio, doc.Text} {
		rs, err := renditions(raw)
		if err != nil {
			return nil, err
		}
		for name, r := range rs {
			if why := c.add(name, r); why != "" {
				c.Skipped[name] = why
				continue
			}
			seen[name] = true
		}
	}
	if doc.Archive != nil && doc.Archive.Track != "" && validName(doc.Archive.Track) {
		seen[doc.Archive.Track] = true
	}
	if len(seen) > MaxTracks {
		return nil, fmt.Errorf("catalog: %d tracks exceeds the limit of %d", len(seen), MaxTracks)
	}
	for name := range seen {
		c.Tracks = append(c.Tracks, name)
	}
	sort.Strings(c.Tracks)
	return c, nil
}

// renditions decodes a media section. The current schema is an object with a
// "renditions" map; an absent section, null, or the old array form yield none.
func renditions(raw json.RawMessage) (map[string]rendition, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, nil
	}
	var s section
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("catalog: renditions: %w", err)
	}
	return s.Renditions, nil
}

// add records a rendition's init segment and returns why it is skipped, or "".
func (c *Catalog) add(name string, r rendition) string {
	if !validName(name) {
		return "invalid track name"
	}
	if r.Broadcast != nil && *r.Broadcast != "" && *r.Broadcast != "." {
		return "rendition lives in broadcast " + fmt.Sprintf("%q", *r.Broadcast)
	}
	if r.Container == nil {
		c.Container[name] = "legacy" // the default
		return ""
	}
	var ct struct {
		Kind string `json:"kind"`
		Init string `json:"init"`
	}
	if err := json.Unmarshal(*r.Container, &ct); err != nil {
		return "unreadable container"
	}
	switch ct.Kind {
	case "legacy", "loc":
		c.Container[name] = ct.Kind
		return ""
	case "cmaf":
		init, err := base64.StdEncoding.DecodeString(ct.Init)
		if err != nil {
			return "cmaf init is not base64"
		}
		if len(init) > 0 {
			c.Init[name] = init
		}
		c.Container[name] = ct.Kind
		return ""
	default:
		return fmt.Sprintf("unknown container kind %q", ct.Kind)
	}
}

func validName(name string) bool {
	return name != "" && len(name) <= MaxTrackName && utf8.ValidString(name)
}
