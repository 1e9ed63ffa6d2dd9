package discover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"
)

// DefaultDirectoryURL is the public stream directory of every.channel.
const DefaultDirectoryURL = "https://every.channel/api/public-streams"

// Limits on a directory response.
const (
	MaxDirectoryBody    = 4 << 20 // bytes
	MaxDirectoryEntries = 100_000
	DefaultFetchTimeout = 15 * time.Second
	maxLoggedBadEntries = 10 // the rest are only counted
)

// DirectorySource lists broadcasts from a web directory such as
// https://every.channel/api/public-streams.
type DirectorySource struct {
	URL     string
	Client  *http.Client  // nil: http.DefaultClient
	Timeout time.Duration // whole request, body included (0: DefaultFetchTimeout)
	Logger  *slog.Logger  // warnings about skipped entries (nil: discarded)
}

// List fetches and parses the directory.
func (d *DirectorySource) List(ctx context.Context) ([]Broadcast, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ec-node-discover")
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("directory %s: HTTP status %s", d.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDirectoryBody+1))
	if err != nil {
		return nil, fmt.Errorf("directory %s: reading body: %w", d.URL, err)
	}
	list, err := ParseDirectory(bytes.NewReader(body), d.Logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.URL, err)
	}
	return list, nil
}

// listKeys are the object keys under which a directory may hold its entries.
var listKeys = []string{"entries", "streams", "public_streams", "broadcasts", "items", "results", "data"}

// ErrMalformedDirectory marks a directory document that cannot be used at
// all, as opposed to a directory that could not be fetched: ec-discover exits
// 65 (data error) for it, 75 for the rest.
var ErrMalformedDirectory = errors.New("malformed document")

// maxDirectoryDepth bounds the nesting of a directory document; entries sit
// at depth 2 or 3, their transports one level further down.
const maxDirectoryDepth = 32

// ParseDirectory parses a directory document: a top-level array of entries,
// or an object holding the array under one of listKeys (also one level down,
// e.g. {"data": {"streams": [...]}}). An entry is an object with the relay URL
// under relay_url|url|relay and the name under broadcast_name|name|broadcast,
// or a control announcement whose "transports" list holds relay_moq transports.
//
// The document itself is read strictly, and any of these makes the whole of
// it an ErrMalformedDirectory: bytes that are not UTF-8, invalid JSON,
// trailing data, a body over MaxDirectoryBody, nesting deeper than
// maxDirectoryDepth, a key repeated within one object (parsers disagree on
// which value wins), no entry list, or lists under two of listKeys at the
// same level. Entries are judged one by one: one that is not an object, has
// a null or wrongly typed field, or fails Broadcast.Validate is skipped with
// a warning, and the rest are used. Duplicate broadcasts are dropped.
func ParseDirectory(r io.Reader, logger *slog.Logger) ([]Broadcast, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	doc, err := decodeDirectory(r)
	if err != nil {
		return nil, fmt.Errorf("directory: %w: %w", ErrMalformedDirectory, err)
	}
	entries, err := entryList(doc, 2)
	if err != nil {
		return nil, fmt.Errorf("directory: %w: %w", ErrMalformedDirectory, err)
	}
	if len(entries) > MaxDirectoryEntries {
		logger.Warn("directory: too many entries, ignoring the rest", "entries", len(entries), "limit", MaxDirectoryEntries)
		entries = entries[:MaxDirectoryEntries]
	}
	var (
		out     []Broadcast
		seen    = map[Broadcast]bool{}
		skipped int
	)
	for i, e := range entries {
		bs, err := parseEntry(e)
		if err != nil {
			if skipped < maxLoggedBadEntries {
				logger.Warn("directory: skipping entry", "index", i, "err", err)
			}
			skipped++
			continue
		}
		for _, b := range bs {
			if !seen[b] {
				seen[b] = true
				out = append(out, b)
			}
		}
	}
	if skipped > 0 {
		logger.Warn("directory: skipped bad entries", "skipped", skipped, "kept", len(out))
	}
	return out, nil
}

// decodeDirectory reads one JSON document of at most MaxDirectoryBody bytes
// into nil, bool, json.Number, string, []any and map[string]any values.
func decodeDirectory(r io.Reader) (any, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxDirectoryBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxDirectoryBody {
		return nil, fmt.Errorf("body exceeds %d bytes", MaxDirectoryBody)
	}
	if !utf8.Valid(body) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	doc, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON document")
	}
	return doc, nil
}

// decodeValue reads the next value from dec, refusing repeated object keys and
// nesting deeper than maxDirectoryDepth.
func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth >= maxDirectoryDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxDirectoryDepth)
	}
	var v any
	switch delim {
	case '[':
		list := []any{}
		for dec.More() {
			e, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, e)
		}
		v = list
	case '{':
		obj := map[string]any{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := tok.(string) // the decoder yields only string keys inside an object
			if _, dup := obj[key]; dup {
				return nil, fmt.Errorf("key %q repeated in one object", key)
			}
			if obj[key], err = decodeValue(dec, depth+1); err != nil {
				return nil, err
			}
		}
		v = obj
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return nil, err
	}
	return v, nil
}

// entryList finds the entry list of a document: the document itself, or the
// one array under listKeys, looking depth levels of objects under listKeys down.
func entryList(doc any, depth int) ([]any, error) {
	switch v := doc.(type) {
	case []any:
		return v, nil
	case map[string]any:
		var found []string
		var list []any
		for _, k := range listKeys {
			if l, ok := v[k].([]any); ok {
				found, list = append(found, k), l
			}
		}
		if len(found) == 0 && depth > 1 {
			for _, k := range listKeys {
				if l, err := entryList(v[k], depth-1); err == nil {
					found, list = append(found, k), l
				}
			}
		}
		switch {
		case len(found) == 1:
			return list, nil
		case len(found) > 1:
			return nil, fmt.Errorf("entry lists under both %q and %q", found[0], found[1])
		}
	}
	return nil, fmt.Errorf("no entry list (want an array or an object with one of %v)", listKeys)
}

var (
	relayKeys = []string{"relay_url", "url", "relay"}
	nameKeys  = []string{"broadcast_name", "name", "broadcast"}
)

// parseEntry returns the broadcasts one entry names (a control announcement can
// carry several relay transports).
func parseEntry(e any) ([]Broadcast, error) {
	obj, ok := e.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("entry is %s, not an object", jsonType(e))
	}
	if hasAny(obj, relayKeys) || hasAny(obj, nameKeys) {
		b, err := broadcastOf(obj)
		if err != nil {
			return nil, err
		}
		return []Broadcast{b}, nil
	}
	transports, ok := obj["transports"].([]any)
	if !ok {
		return nil, fmt.Errorf("entry has none of the keys %v / %v and no transports", relayKeys, nameKeys)
	}
	var out []Broadcast
	var firstErr error
	for _, t := range transports {
		tr, ok := t.(map[string]any)
		if !ok || tr["kind"] != "relay_moq" {
			continue
		}
		b, err := broadcastOf(tr)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, errors.New("entry has no relay_moq transport")
	}
	return out, nil
}

func broadcastOf(obj map[string]any) (Broadcast, error) {
	relay, err := firstString(obj, relayKeys)
	if err != nil {
		return Broadcast{}, err
	}
	name, err := firstString(obj, nameKeys)
	if err != nil {
		return Broadcast{}, err
	}
	b := Broadcast{RelayURL: relay, Name: name}
	return b, b.Validate()
}

func hasAny(obj map[string]any, keys []string) bool {
	for _, k := range keys {
		if _, ok := obj[k]; ok {
			return true
		}
	}
	return false
}

// firstString returns the value of the first of keys present in obj.
func firstString(obj map[string]any, keys []string) (string, error) {
	for _, k := range keys {
		if v, ok := obj[k]; ok {
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%s is %s, not a string", k, jsonType(v))
			}
			return s, nil
		}
	}
	return "", fmt.Errorf("none of the keys %v", keys)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}
