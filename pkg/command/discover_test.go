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

func TestDiscoverErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }))
	defer srv.Close()
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"--directory", srv.URL}, ExitTempFail},
		{[]string{"--directory", srv.URL, "--relay", "https://r"}, ExitUsage},
		{[]string{"--prefix", "x"}, ExitUsage},
		{[]string{"--relay", "http://plain"}, ExitConfig},
	} {
		if _, stderr, code := runStage(t, Discover(), nil, tt.args...); code != tt.code {
			t.Errorf("%v: exit %d, want %d (%s)", tt.args, code, tt.code, stderr)
		}
	}
}
