package discover

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestValidateRelayURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://cdn.moq.dev/anon", true},
		{"https://cdn.moq.dev/anon/", true},
		{"https://cdn.moq.dev", true},
		{"https://cdn.moq.dev/", true},
		{"https://CDN.moq.dev/anon", true},
		{"https://127.0.0.1:4443", true},
		{"https://127.0.0.1:1/a", true},
		{"https://relay.example:65535/a/b_c", true},
		{"https://[::1]:4443/anon", true},
		{"https://[2001:db8::1]/anon", true},
		{"https://[::ffff:192.0.2.1]:4443/anon", true},
		{"https://relay.example/anon?jwt=eyJ.abc.def", true},
		{"https://relay.example/a%7Cb", true},
		{"https://relay.example/%E6%97%A5", true},
		{"https://xn--bcher-kva.example/anon", true},

		// scheme
		{"http://cdn.moq.dev/anon", false},
		{"HTTPS://cdn.moq.dev/anon", false},
		{"file:///etc/passwd", false},
		{"MOQT://cdn.moq.dev/anon", false},
		{"moq://cdn.moq.dev/anon", false},
		{"moqt-14://cdn.moq.dev/anon", false},
		{"wss://cdn.moq.dev/anon", false},
		{"moqt:cdn.moq.dev", false},
		{"moqt:///anon", false},
		{"not a url", false},
		{"", false},
		{"//cdn.moq.dev/anon", false},
		{"https:cdn.moq.dev", false},
		// host
		{"https:///anon", false},
		{"https://:443/anon", false},
		{"https://cdn..moq.dev/anon", false},
		{"https://cdn.moq.dev./anon", false},
		{"https://-cdn.moq.dev/anon", false},
		{"https://cdn.moq.dev-/anon", false},
		{"https://cdn moq.dev/anon", false},
		{"https://bücher.example/anon", false},
		{"https://127.1/anon", false},
		{"https://127.000.0.1/anon", false},
		{"https://[fe80::1%25eth0]/anon", false},
		{"https://[1.2.3.4]/anon", false},
		{"https://1::2:3/anon", false},
		{"https://::1/anon", false},
		{"https://[::1/anon", false},
		{"https://" + strings.Repeat("a", 64) + ".example/anon", false},
		{"https://" + strings.Repeat("a.", 127) + "example/anon", false},
		// port
		{"https://cdn.moq.dev:0/anon", false},
		{"https://cdn.moq.dev:65536/anon", false},
		{"https://cdn.moq.dev:99999/anon", false},
		{"https://cdn.moq.dev:/anon", false},
		{"https://cdn.moq.dev:0443/anon", false},
		{"https://cdn.moq.dev:-1/anon", false},
		{"https://cdn.moq.dev:4a/anon", false},
		// path
		{"https://cdn.moq.dev/../anon", false},
		{"https://cdn.moq.dev/anon/..", false},
		{"https://cdn.moq.dev/anon/../x", false},
		{"https://cdn.moq.dev/./anon", false},
		{"https://cdn.moq.dev/%2e%2e/anon", false},
		{"https://cdn.moq.dev/%2E%2E", false},
		{"https://cdn.moq.dev//anon", false},
		{"https://cdn.moq.dev/anon//", false},
		{"https://cdn.moq.dev/a%2Fb", false},
		{"https://cdn.moq.dev/a%0Ab", false},
		{"https://cdn.moq.dev/a%00b", false},
		{"https://cdn.moq.dev/a b", false},
		{"https://cdn.moq.dev/a|b", false},
		{"https://cdn.moq.dev/%e6%97%a5", false},
		{"https://cdn.moq.dev/%61non", false},
		{"https://cdn.moq.dev/日本", false},
		// user info, fragment, query
		{"https://user:pw@cdn.moq.dev/anon", false},
		{"https://user@cdn.moq.dev/anon", false},
		{"https://cdn.moq.dev/anon#x", false},
		{"https://cdn.moq.dev/anon#", false},
		{"https://cdn.moq.dev/anon?", false},
		{"https://cdn.moq.dev/anon?jwt=", false},
		{"https://cdn.moq.dev/anon?jwt=a&jwt=b", false},
		{"https://cdn.moq.dev/anon?jwt=a&x=1", false},
		{"https://cdn.moq.dev/anon?token=a", false},
		{"https://cdn.moq.dev/anon?jwt=a;b", false},
		// control characters and length
		{"https://cdn.moq.dev/anon\n", false},
		{"https://cdn.moq.dev/an\x00on", false},
		{"https://cdn.moq.dev/" + strings.Repeat("a", MaxURLLen), false},
	}
	for _, tt := range tests {
		// Raw QUIC URLs (moqt, moql) pass exactly the checks WebTransport ones do.
		for _, scheme := range []string{"https", "moqt", "moql"} {
			u := tt.url
			if rest, ok := strings.CutPrefix(u, "https"); ok {
				u = scheme + rest
			} else if scheme != "https" {
				continue
			}
			err := ValidateRelayURL(u)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateRelayURL(%q) = %v, want ok=%v", u, err, tt.ok)
			}
		}
	}
}

func TestValidateRelayURLErrorsHideTheToken(t *testing.T) {
	for _, u := range []string{"http://r.example/?jwt=sekrit", "https://r.example//?jwt=sekrit", "https://r.example:0/?jwt=sekrit", "https://r.example/a%61?jwt=sekrit", "https://[1.2.3.4]/?jwt=sekrit", "https://u:sekrit@r.example/"} {
		err := ValidateRelayURL(u)
		if err == nil || strings.Contains(err.Error(), "sekrit") {
			t.Errorf("ValidateRelayURL(%q) = %v; want an error without the token", u, err)
		}
	}
}

func TestValidateDirectoryURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://every.channel/api/public-streams", true},
		{"http://127.0.0.1:8080/streams.json", true},
		{"https://every.channel/api/public-streams?limit=10", true},
		{"not a url", false},
		{"", false},
		{"/api/public-streams", false},
		{"ftp://every.channel/list", false},
		{"file:///tmp/list.json", false},
		{"https://user:pw@every.channel/api", false},
		{"https://every.channel/api#x", false},
		{"http://127.0.0.1:0/", false},
		{"http://127.0.0.1:99999/", false},
		{"http:///x", false},
		{"https://every.channel/api\n", false},
	}
	for _, tt := range tests {
		err := ValidateDirectoryURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateDirectoryURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"la-nbc", true},
		{"live/alice", true},
		{"a..b/c.", true},
		{"日本語/チャンネル", true},
		{"x|y:z", true},
		{"", false},
		{"../x", false},
		{"a/../b", false},
		{"./a", false},
		{"a/.", false},
		{"/abs", false},
		{"a/", false},
		{"a//b", false},
		{"new\nline", false},
		{"tab\there", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"bad\xffutf8", false},
		{strings.Repeat("x", MaxNameLen), true},
		{strings.Repeat("x", MaxNameLen+1), false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// FuzzValidateRelayURL: whatever passes has a host, a port in range, no dot
// segments, no credentials other than a jwt, and is its own normal form.
func FuzzValidateRelayURL(f *testing.F) {
	for _, s := range []string{"https://cdn.moq.dev/anon", "https://[::1]:4443/a/?jwt=x", "https://a:0", "https://a/%2e%2e", "https://a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if ValidateRelayURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, err)
		}
		if u.Hostname() == "" || u.User != nil || u.Fragment != "" || u.String() != raw {
			t.Fatalf("accepted %q: %+v", raw, u)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Fatalf("accepted %q with port %q", raw, p)
			}
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q with path %q", raw, u.Path)
			}
		}
		if q := u.Query(); u.RawQuery != "" && (len(q) != 1 || q.Get("jwt") == "") {
			t.Fatalf("accepted %q with query %q", raw, u.RawQuery)
		}
	})
}
