package moq_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/every-channel/ec-node/pkg/moq"
)

func TestFetchFingerprint(t *testing.T) {
	good := strings.Repeat("ab", 32)
	cases := []struct {
		name, body string
		status     int
		ok         bool
	}{
		{"relay body with newline", good + "\n", 200, true},
		{"uppercase accepted", strings.ToUpper(good), 200, true},
		{"short", "abcd", 200, false},
		{"not hex", strings.Repeat("zz", 32), 200, false},
		{"huge", strings.Repeat("a", 1<<20), 200, false},
		{"404", good, 404, false},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/certificate.sha256" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		fp, err := moq.FetchFingerprint(testCtx(t), srv.URL+"/anon?jwt=x")
		srv.Close()
		if (err == nil) != tc.ok || (tc.ok && fp != good) {
			t.Errorf("%s: %q, %v", tc.name, fp, err)
		}
	}
}
