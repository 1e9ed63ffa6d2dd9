// Package discover finds live broadcasts: from the public web directory
// (DirectorySource) or from a relay's own announcements (AnnounceSource), and
// turns successive listings into add/remove events (Diff, Watch).
package discover

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Broadcast is one live broadcast and the relay that carries it.
type Broadcast struct {
	RelayURL string `json:"relay_url"`
	Name     string `json:"broadcast_name"`
}

// Source lists the broadcasts that are live now.
type Source interface {
	List(ctx context.Context) ([]Broadcast, error)
}

// Limits on names and URLs from the network.
const (
	MaxNameLen = 1024 // bytes of a broadcast name
	MaxURLLen  = 2048 // bytes of a relay URL
)

// ValidateName accepts a broadcast name that is safe to log, to print one per
// line, to pass as an argument and to escape into a unit name: non-empty, at
// most MaxNameLen bytes of valid UTF-8 without control characters (so no NUL,
// tab or newline), and a relative path without empty, "." or ".." segments.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty broadcast name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("broadcast name of %d bytes exceeds %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("broadcast name %q is not valid UTF-8", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("broadcast name %q contains a control character", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("broadcast name %q has an empty, \".\" or \"..\" path segment", name)
		}
	}
	return nil
}

// ValidateRelayURL accepts an https URL with a host and no user info or
// fragment. Plain http is refused: WebTransport runs only over TLS, and a
// directory entry must not be able to point workers at an unencrypted endpoint.
func ValidateRelayURL(raw string) error {
	if len(raw) > MaxURLLen {
		return fmt.Errorf("relay URL of %d bytes exceeds %d", len(raw), MaxURLLen)
	}
	if strings.ContainsFunc(raw, unicode.IsControl) {
		return errors.New("relay URL contains a control character")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("relay URL: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("relay URL %q: scheme must be https", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("relay URL %q has no host", raw)
	case u.User != nil:
		return fmt.Errorf("relay URL %q: user info is not allowed", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("relay URL %q: fragment is not allowed", raw)
	}
	return nil
}

// Validate checks both fields.
func (b Broadcast) Validate() error {
	if err := ValidateRelayURL(b.RelayURL); err != nil {
		return err
	}
	return ValidateName(b.Name)
}
