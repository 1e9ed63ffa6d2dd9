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
	if len(body) > MaxDirectoryBody {
		return nil, fmt.Errorf("directory %s: body exceeds %d bytes", d.URL, MaxDirectoryBody)
	}
	return ParseDirectory(bytes.NewReader(body), d.Logger)
}

// listKeys are the object keys under which a directory may hold its entries.
var listKeys = []string{"entries", "streams", "public_streams", "broadcasts", "items", "results", "data"}

// ParseDirectory parses a directory document leniently: a top-level array of
// entries, or an object holding the array under one of listKeys (also one level
// down, e.g. {"data": {"streams": [...]}}). An entry is an object with the relay
// URL under relay_url|url|relay and the name under broadcast_name|name|broadcast,
// or a control announcement whose "transports" list holds relay_moq transports.
// Entries that are malformed or fail validation are skipped with a warning;
// duplicates are dropped. Only a document that is not JSON, or holds no entry
// list at all, is an error.
func ParseDirectory(r io.Reader, logger *slog.Logger) ([]Broadcast, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var doc any
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("directory: invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("directory: trailing data after the JSON document")
	}
	entries, ok := entryList(doc, 2)
	if !ok {
		return nil, fmt.Errorf("directory: no entry list (want an array or an object with one of %v)", listKeys)
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

func entryList(doc any, depth int) ([]any, bool) {
	switch v := doc.(type) {
	case []any:
		return v, true
	case map[string]any:
		for _, k := range listKeys {
			if l, ok := v[k].([]any); ok {
				return l, true
			}
		}
		if depth > 1 {
			for _, k := range listKeys {
				if l, ok := entryList(v[k], depth-1); ok {
					return l, true
				}
			}
		}
	}
	return nil, false
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
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}
