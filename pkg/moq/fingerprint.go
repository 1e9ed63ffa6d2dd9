package moq

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxFingerprintBody bounds the /certificate.sha256 response we read.
const maxFingerprintBody = 1024

// FetchFingerprint GETs http(s)://host:port/certificate.sha256 from moq-relay's
// web listener and returns the 64 lowercase hex digits it serves. Only the
// scheme and host of httpURL are used.
func FetchFingerprint(ctx context.Context, httpURL string) (string, error) {
	u, err := url.Parse(httpURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("moq: fingerprint URL %q: want http://host:port", RedactURL(httpURL))
	}
	target := url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/certificate.sha256"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return "", fmt.Errorf("moq: fingerprint request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("moq: fetch %s: %w", target.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("moq: fetch %s: status %s", target.String(), resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFingerprintBody+1))
	if err != nil {
		return "", fmt.Errorf("moq: read %s: %w", target.String(), err)
	}
	if len(body) > maxFingerprintBody {
		return "", fmt.Errorf("moq: %s: body longer than %d bytes", target.String(), maxFingerprintBody)
	}
	fp := strings.ToLower(strings.TrimSpace(string(body)))
	if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
		return "", fmt.Errorf("moq: %s: body is not 64 hex digits", target.String())
	}
	return fp, nil
}
