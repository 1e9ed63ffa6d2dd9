package command

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDiscoverDirectory(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"streams":[{"relay_url":"https://r.example/anon","broadcast_name":"b"},
			{"relay_url":"https://r.example/anon","broadcast_name":"a"},{"relay_url":"ftp://x","name":"bad"}]}`)
	}))
	defer srv.Close()
	stdout, stderr, code := runStage(t, Discover(), nil, "--directory", srv.URL)
	if code != 0 || stdout != "https://r.example/anon\ta\nhttps://r.example/anon\tb\n" {
		t.Errorf("code %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "skipping entry") {
		t.Errorf("no warning about the bad entry: %s", stderr)
	}
	stdout, _, code = runStage(t, Discover(), nil, "--directory", srv.URL, "--json")
	if want := `{"relay_url":"https://r.example/anon","broadcast_name":"a"}` + "\n"; code != 0 || !strings.HasPrefix(stdout, want) {
		t.Errorf("--json: code %d, stdout %q", code, stdout)
	}
}

// TestDiscoverExitStatus covers docs/exit-codes.md for ec-discover: a bad URL
// is a configuration error (78), a document that arrived but cannot be used is
// a data error (65), a directory that cannot be reached is transient (75).
func TestDiscoverExitStatus(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	for path, doc := range map[string]string{
		"/html":      "<html>",
		"/truncated": `[{"relay_url":"https://r.example/anon"`,
		"/dupkey":    `[{"relay_url":"https://r.example/anon","broadcast_name":"a","broadcast_name":"b"}]`,
		"/nolist":    `{"now_ms":1}`,
		"/nulllist":  `{"entries":null}`,
		"/badutf8":   "[\"\xff\"]",
		"/empty":     "",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, doc) })
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	gone := httptest.NewServer(mux)
	gone.Close()

	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"--directory", srv.URL + "/down"}, ExitTempFail},
		{[]string{"--directory", gone.URL}, ExitTempFail},
		{[]string{"--directory", srv.URL + "/html"}, ExitDataErr},
		{[]string{"--directory", srv.URL + "/truncated"}, ExitDataErr},
		{[]string{"--directory", srv.URL + "/dupkey"}, ExitDataErr},
		{[]string{"--directory", srv.URL + "/nolist"}, ExitDataErr},
		{[]string{"--directory", srv.URL + "/nulllist"}, ExitDataErr},
		{[]string{"--directory", srv.URL + "/badutf8"}, ExitDataErr},
		{[]string{"--directory", srv.URL + "/empty"}, ExitDataErr},
		{[]string{"--directory", "not a url"}, ExitConfig},
		{[]string{"--directory", ""}, ExitConfig},
		{[]string{"--directory", "/api/public-streams"}, ExitConfig},
		{[]string{"--directory", "ftp://every.channel/list"}, ExitConfig},
		{[]string{"--directory", "http://127.0.0.1:0/"}, ExitConfig},
		{[]string{"--directory", "https://user:pw@every.channel/api"}, ExitConfig},
		{[]string{"--relay", "http://plain"}, ExitConfig},
		{[]string{"--relay", "not a url"}, ExitConfig},
		{[]string{"--relay", "https://r.example:99999/anon"}, ExitConfig},
		{[]string{"--relay", "https://r.example/anon/../x"}, ExitConfig},
		{[]string{"--relay", "https://u@r.example/anon"}, ExitConfig},
		{[]string{"--relay", "https://r.example/anon?token=x"}, ExitConfig},
		{[]string{"--relay", "https://r.example/anon", "--tls-fingerprint", "xyz"}, ExitConfig},
		{[]string{"--relay", "https://r.example/anon", "--protocol", "moq-transport-16"}, ExitConfig},
		{[]string{"--directory", srv.URL, "--relay", "https://r.example"}, ExitUsage},
		{[]string{"--prefix", "x"}, ExitUsage},
	} {
		if _, stderr, code := runStage(t, Discover(), nil, tt.args...); code != tt.code {
			t.Errorf("%q: exit %d, want %d (%s)", tt.args, code, tt.code, stderr)
		}
	}
}
