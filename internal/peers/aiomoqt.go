package peers

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/every-channel/ec-node/internal/freeport"
)

// AiomoqtVenv returns the virtualenv that scripts/install-aiomoqt.sh builds:
// $EC_AIOMOQT_VENV if set, else ec-node/aiomoqt-venv in the user cache
// directory. The error wraps os.ErrNotExist when its python is missing.
func AiomoqtVenv() (string, error) {
	venv := os.Getenv("EC_AIOMOQT_VENV")
	if venv == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("peers: aiomoqt venv: %w", err)
		}
		venv = filepath.Join(cache, "ec-node", "aiomoqt-venv")
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "python")); err != nil {
		return "", fmt.Errorf("peers: aiomoqt venv (scripts/install-aiomoqt.sh): %w", err)
	}
	return venv, nil
}

// AiomoqtOptions configures StartAiomoqt.
type AiomoqtOptions struct {
	// Relay is the relay aiomoqt publishes into, under the session root
	// "anon". Nil: aiomoqt is the server, on a port and with a certificate of
	// its own, and subscribers dial it directly.
	Relay *Relay
	// Namespace is the broadcast path ("a/b" is the tuple ["a","b"]); Track
	// the track name.
	Namespace, Track string
	// Groups and Objects: what each subscription gets.
	Groups, Objects int
	// EndOfGroup ends each group with an END_OF_GROUP status object before
	// the stream's FIN (not through moq-relay: see aiomoqt_pub.py).
	EndOfGroup bool
	// MSFCatalog also serves the MSF catalog track "catalog", one group
	// naming Track (draft-ietf-moq-msf).
	MSFCatalog bool
	// LogDir receives aiomoqt.log (required).
	LogDir string
}

// PublishedGroup is one group as aiomoqt reports having sent it.
type PublishedGroup struct {
	Group   uint64
	Objects [][]byte
}

// Aiomoqt is aiomoqt_pub.py running on aiomoqt, a draft-14 implementation
// independent of moq-net and of ours.
type Aiomoqt struct {
	LogPath string

	port        int
	fingerprint string
	proc        *process
	published   chan publishResult
}

type publishResult struct {
	groups []PublishedGroup
	err    error
}

// StartAiomoqt starts aiomoqt_pub.py with the venv's python and waits until
// it has published its namespace to the relay or listens.
func StartAiomoqt(ctx context.Context, logf Logf, opts AiomoqtOptions) (*Aiomoqt, error) {
	venv, err := AiomoqtVenv()
	if err != nil {
		return nil, err
	}
	a := &Aiomoqt{LogPath: filepath.Join(opts.LogDir, "aiomoqt.log"), published: make(chan publishResult, 1)}
	args := []string{filepath.Join(repoRoot(), "internal", "peers", "aiomoqt_pub.py"),
		"--namespace", opts.Namespace, "--track", opts.Track,
		"--groups", strconv.Itoa(opts.Groups), "--objects", strconv.Itoa(opts.Objects)}
	if opts.EndOfGroup {
		args = append(args, "--end-of-group")
	}
	if opts.MSFCatalog {
		args = append(args, "--msf-catalog")
	}
	if opts.Relay != nil {
		args = append(args, "--connect", strconv.Itoa(opts.Relay.Port))
	} else {
		tlsDir := filepath.Join(opts.LogDir, "aiomoqt-tls")
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
		certFile, keyFile, err := writeSelfSigned(tlsDir)
		if err != nil {
			return nil, err
		}
		if a.fingerprint, err = certFingerprint(certFile); err != nil {
			return nil, err
		}
		if a.port, err = freeport.Pick("udp", "tcp"); err != nil {
			return nil, err
		}
		args = append(args, "--listen", strconv.Itoa(a.port), "--cert", certFile, "--key", keyFile)
	}
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	cmd := exec.Command(filepath.Join(venv, "bin", "python"), args...)
	cmd.Stdout = w
	logf("peers: starting %s", cmd.String())
	a.proc, err = start(cmd, a.LogPath)
	w.Close()
	if err != nil {
		stdout.Close()
		return nil, err
	}
	ready := make(chan error, 1)
	go a.readStdout(stdout, ready)
	deadline, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case err = <-ready:
	case <-deadline.Done():
		err = deadline.Err()
	}
	if err != nil {
		_ = a.Stop()
		return nil, fmt.Errorf("peers: aiomoqt not ready: %w\n%s", err, tail(a.LogPath, 20))
	}
	return a, nil
}

// readStdout reports the ready line, then collects the groups of the first
// subscription served until its done line.
func (a *Aiomoqt) readStdout(stdout io.ReadCloser, ready chan<- error) {
	defer stdout.Close()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 64<<20) // a line holds a group in hex
	line := func() (map[string]json.RawMessage, error) {
		if !sc.Scan() {
			if sc.Err() != nil {
				return nil, sc.Err()
			}
			return nil, errors.New("aiomoqt_pub.py ended its output")
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("aiomoqt_pub.py output %q: %w", sc.Text(), err)
		}
		return m, nil
	}
	m, err := line()
	if err == nil && m["ready"] == nil {
		err = fmt.Errorf("aiomoqt_pub.py: %q before ready", sc.Text())
	}
	ready <- err
	if err != nil {
		return
	}
	var groups []PublishedGroup
	for {
		m, err := line()
		if err != nil {
			a.published <- publishResult{err: err}
			return
		}
		if m["done"] != nil {
			a.published <- publishResult{groups: groups}
			return
		}
		var g struct {
			Group   uint64
			Objects []string
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			a.published <- publishResult{err: fmt.Errorf("aiomoqt_pub.py output: %w", err)}
			return
		}
		pg := PublishedGroup{Group: g.Group}
		for _, o := range g.Objects {
			b, err := hex.DecodeString(o)
			if err != nil {
				a.published <- publishResult{err: fmt.Errorf("aiomoqt_pub.py output: %w", err)}
				return
			}
			pg.Objects = append(pg.Objects, b)
		}
		groups = append(groups, pg)
	}
}

// Published returns the groups aiomoqt sent to its first subscriber, once it
// has sent them all.
func (a *Aiomoqt) Published(ctx context.Context) ([]PublishedGroup, error) {
	select {
	case r := <-a.published:
		return r.groups, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("peers: waiting for aiomoqt's groups: %w", ctx.Err())
	}
}

// URL is the WebTransport URL of aiomoqt's own server (the session root
// "anon"); empty when it publishes into a relay.
func (a *Aiomoqt) URL() string {
	if a.port == 0 {
		return ""
	}
	return fmt.Sprintf("https://127.0.0.1:%d/anon", a.port)
}

// Fingerprint is the hex SHA-256 of aiomoqt's server certificate.
func (a *Aiomoqt) Fingerprint() string { return a.fingerprint }

// Stop ends aiomoqt with SIGINT.
func (a *Aiomoqt) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.proc.stop(ctx, false)
}

// certFingerprint is the hex SHA-256 of the DER certificate in a PEM file.
func certFingerprint(certFile string) (string, error) {
	raw, err := os.ReadFile(certFile)
	if err != nil {
		return "", fmt.Errorf("peers: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return "", fmt.Errorf("peers: %s holds no PEM block", certFile)
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:]), nil
}
