package peers

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/every-channel/ec-node/internal/freeport"
	"github.com/every-channel/ec-node/pkg/moq"
)

// RelayOptions configures StartRelay.
type RelayOptions struct {
	// Versions restricts the moq versions the relay accepts (--listen-version),
	// e.g. ["moq-lite-04"] to force one. Empty: all it supports.
	Versions []string
	// LogDir receives relay.log (required; a test's t.TempDir()).
	LogDir string
	// LogLevel is the relay's --log-level (default "info").
	LogLevel string
}

// Relay is a running moq-relay on 127.0.0.1 with a generated certificate and
// anonymous publish+subscribe access to every path (--auth-public '**').
type Relay struct {
	Port    int
	LogPath string

	opts        RelayOptions
	logf        Logf
	proc        *process
	fingerprint string
	certFile    string
	keyFile     string
}

// StartRelay starts moq-relay on a free port (QUIC on UDP, HTTP on TCP, same
// number) and waits until /certificate.sha256 answers.
func StartRelay(ctx context.Context, logf Logf, opts RelayOptions) (*Relay, error) {
	port, err := freeport.Pick("udp", "tcp")
	if err != nil {
		return nil, err
	}
	r := &Relay{Port: port, LogPath: filepath.Join(opts.LogDir, "relay.log"), opts: opts, logf: logf}
	// Our own certificate rather than --listen-tls-generate: it survives
	// Restart, so that clients pinned to its fingerprint can reconnect. It gets
	// a directory of its own: moq-relay watches the certificate's directory
	// and reloads on every change there, and a reload writes to relay.log.
	tlsDir := filepath.Join(opts.LogDir, "relay-tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	if r.certFile, r.keyFile, err = writeSelfSigned(tlsDir); err != nil {
		return nil, err
	}
	if err := r.launch(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Relay) launch(ctx context.Context) error {
	dir, err := BinDir()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", r.Port)
	level := r.opts.LogLevel
	if level == "" {
		level = "info"
	}
	args := []string{"--listen", addr, "--listen-tls-cert", r.certFile, "--listen-tls-key", r.keyFile,
		"--web-http-listen", addr, "--auth-public", "**", "--log-level", level}
	for _, v := range r.opts.Versions {
		args = append(args, "--listen-version", v)
	}
	cmd := exec.Command(filepath.Join(dir, "moq-relay"), args...)
	r.logf("peers: starting %s", cmd.String())
	r.proc, err = start(cmd, r.LogPath)
	if err != nil {
		return err
	}
	deadline, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		fp, err := moq.FetchFingerprint(deadline, r.HTTPURL())
		if err == nil {
			r.fingerprint = fp
			return nil
		}
		select {
		case <-r.proc.done:
			return fmt.Errorf("peers: moq-relay exited: %v\n%s", r.proc.err, tail(r.LogPath, 20))
		case <-deadline.Done():
			_ = r.proc.stop(context.Background(), true)
			return fmt.Errorf("peers: moq-relay not ready: %w\n%s", err, tail(r.LogPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// URL is the WebTransport URL of a session rooted at path (e.g. "anon").
func (r *Relay) URL(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d/%s", r.Port, path)
}

// QUICURL is the raw QUIC URL of the same session (moqt://): moq-relay serves
// its moq ALPNs on the QUIC port that also serves WebTransport.
func (r *Relay) QUICURL(path string) string {
	return fmt.Sprintf("moqt://127.0.0.1:%d/%s", r.Port, path)
}

// HTTPURL is the relay's plain-HTTP listener (certificate, /announced/).
func (r *Relay) HTTPURL() string { return fmt.Sprintf("http://127.0.0.1:%d", r.Port) }

// Fingerprint is the hex SHA-256 of the relay's certificate. It is the same
// after Restart.
func (r *Relay) Fingerprint() string { return r.fingerprint }

// Stop ends the relay with SIGINT (it drains sessions with GOAWAY).
func (r *Relay) Stop() error { return r.halt(false) }

// Kill ends the relay with SIGKILL.
func (r *Relay) Kill() error { return r.halt(true) }

func (r *Relay) halt(hard bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.proc.stop(ctx, hard)
}

// Restart kills the relay and starts it again on the same port.
func (r *Relay) Restart(ctx context.Context) error {
	if err := r.Kill(); err != nil {
		return err
	}
	return r.launch(ctx)
}

// Announced lists the relay's broadcasts under prefix through its HTTP API.
func (r *Relay) Announced(ctx context.Context, prefix string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.HTTPURL()+"/announced/"+prefix, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}
