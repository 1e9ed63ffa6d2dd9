// Package discover finds live broadcasts: from the public web directory
// (DirectorySource) or from a relay's own announcements (AnnounceSource), and
// turns successive listings into add/remove events (Diff, Watch).
package discover

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/every-channel/ec-node/pkg/moq"
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

// relaySchemes are the relay URL schemes ValidateRelayURL accepts: the ones
// moq.Dial dials, https for WebTransport, moqt and moql for raw QUIC.
var relaySchemes = []string{moq.SchemeWebTransport, moq.SchemeQUIC, moq.SchemeQUICLite}

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

// ValidateRelayURL is the one check of a relay URL, whether it comes from a
// directory entry, a command-line flag or a rendered unit. It accepts
//
//	https://host[:port][/path][?jwt=TOKEN]  (WebTransport)
//	moqt://host[:port][/path][?jwt=TOKEN]   (raw QUIC; moql:// alike)
//
// in normalized form: scheme https, moqt or moql (all three run over TLS 1.3,
// and a directory entry must not point workers at a cleartext endpoint); a
// host (see validHost) and, if given, a port from 1 to 65535 without leading
// zeros; a path whose segments are neither empty (a single trailing "/"
// aside), "." nor "..", even percent-encoded, and which is written as Go's
// url package writes it (so one relay path has one spelling, and one Key);
// no user info, no fragment; and a query, if any, of exactly one non-empty
// jwt parameter, the relay's only one. Errors never quote the query.
func ValidateRelayURL(raw string) error {
	u, err := parseURL("relay URL", raw)
	if err != nil {
		return err
	}
	safe := redacted(raw)
	if !slices.Contains(relaySchemes, u.Scheme) {
		return fmt.Errorf("relay URL %s: scheme must be one of %s", safe, strings.Join(relaySchemes, ", "))
	}
	if err := validPath(u.Path); err != nil {
		return fmt.Errorf("relay URL %s: %w", safe, err)
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil || len(q) != 1 || len(q["jwt"]) != 1 || q.Get("jwt") == "" {
			return fmt.Errorf("relay URL %s: the only query allowed is one jwt=TOKEN", safe)
		}
	}
	canon := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawQuery: u.RawQuery}
	if canon.String() != raw {
		return fmt.Errorf("relay URL %s is not in normalized form (want %s)", safe, redacted(canon.String()))
	}
	return nil
}

// ValidateDirectoryURL checks the URL of a web directory: http or https (the
// directory is operator configuration, and tests serve one locally), a host
// and port as for a relay, no user info and no fragment.
func ValidateDirectoryURL(raw string) error {
	u, err := parseURL("directory URL", raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("directory URL %s: scheme must be https or http", redacted(raw))
	}
	return nil
}

// parseURL parses an absolute URL and checks what relay and directory URLs
// share: length, no control characters, host and port, no user info, no
// fragment.
func parseURL(what, raw string) (*url.URL, error) {
	if len(raw) > MaxURLLen {
		return nil, fmt.Errorf("%s of %d bytes exceeds %d", what, len(raw), MaxURLLen)
	}
	if strings.ContainsFunc(raw, unicode.IsControl) {
		return nil, fmt.Errorf("%s contains a control character", what)
	}
	safe := redacted(raw)
	u, err := url.Parse(raw)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // without the URL, which may hold a token
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, safe, err)
	}
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return nil, fmt.Errorf("%s %s: want scheme://host/path", what, safe)
	case u.User != nil:
		return nil, fmt.Errorf("%s %s: user info is not allowed", what, safe)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%s %s: fragment is not allowed", what, safe)
	}
	if err := validHost(u.Host); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, safe, err)
	}
	return u, nil
}

// redacted quotes raw for an error message, without the user info, query and
// fragment, which may hold credentials.
func redacted(raw string) string {
	s := raw
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?…"
	}
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndexByte(rest[:strings.IndexByte(rest+"/", '/')], '@'); at >= 0 {
			s = s[:i+3] + "…@" + rest[at+1:]
		}
	}
	return strconv.Quote(s)
}

// validHost accepts host[:port] where host is an IP address (IPv6 in
// brackets, without zone) or an ASCII DNS name: labels of letters, digits,
// "-" and "_", 1 to 63 bytes, not starting or ending with "-", at most 253
// bytes in all, no trailing dot, and a last label that is not all digits (so
// "127.1" or "127.000.0.1" cannot pass as names). International names go in
// their xn-- form. The port, if present, is 1 to 65535 in plain decimal.
func validHost(hostport string) error {
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return fmt.Errorf("port %q: want 1 to 65535", port)
		}
	}
	if h, ok := strings.CutPrefix(host, "["); ok {
		h, ok = strings.CutSuffix(h, "]")
		if a, err := netip.ParseAddr(h); !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("host %q: want an IPv6 address in brackets", host)
		}
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return nil // IPv6 needs the brackets
	}
	if host == "" {
		return errors.New("no host")
	}
	if len(host) > 253 {
		return fmt.Errorf("host name of %d bytes exceeds 253", len(host))
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.ContainsFunc(l, notHostByte) {
			return fmt.Errorf("host %q: want an IP address or a DNS name", host)
		}
	}
	if !strings.ContainsFunc(labels[len(labels)-1], func(r rune) bool { return r < '0' || r > '9' }) {
		return fmt.Errorf("host %q: neither an IP address nor a DNS name", host)
	}
	return nil
}

func notHostByte(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

// validPath checks a decoded URL path: empty or "/"-rooted segments that are
// neither empty (except one trailing "/"), "." nor "..", and no control
// characters (which percent-encoding could smuggle in).
func validPath(p string) error {
	if p == "" || p == "/" {
		return nil
	}
	if strings.ContainsFunc(p, unicode.IsControl) {
		return errors.New("path contains a control character")
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path %q has an empty, \".\" or \"..\" segment", p)
		}
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
