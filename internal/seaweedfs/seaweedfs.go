// Package seaweedfs starts a REAL S3-compatible server for tests: SeaweedFS's
// `weed server` (master, volume, filer and S3 gateway in one process) on
// loopback, built by scripts/install-seaweedfs.sh. With no identities
// configured it accepts any request, signed or not.
package seaweedfs

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/every-channel/ec-node/internal/freeport"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Bin returns the weed binary: $EC_SEAWEEDFS_BIN if set, else the last line
// printed by scripts/install-seaweedfs.sh (which builds it once, in about four
// minutes, and then only checks its cache). The result is cached per process.
func Bin() (string, error) {
	binOnce.Do(func() {
		if p := os.Getenv("EC_SEAWEEDFS_BIN"); p != "" {
			binPath = p
			return
		}
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "install-seaweedfs.sh")
		out, err := exec.Command("bash", script).Output()
		if err != nil {
			binErr = fmt.Errorf("seaweedfs: %s: %w", script, err)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		binPath = strings.TrimSpace(lines[len(lines)-1])
	})
	if binErr != nil {
		return "", binErr
	}
	if _, err := os.Stat(binPath); err != nil {
		return "", fmt.Errorf("seaweedfs: weed binary: %w", err)
	}
	return binPath, nil
}

// Server is a running `weed server` with its S3 gateway.
type Server struct {
	dir, log string
	ports    [8]int // master, volume, filer, s3 and their grpc ports
	cmd      *exec.Cmd
	done     chan struct{}
}

// Start starts a server keeping its data and log under dir, waits until its S3
// gateway answers and creates the named buckets. Stop or Kill it when done; a
// Kill then Restart keeps the data.
func Start(ctx context.Context, dir string, buckets ...string) (*Server, error) {
	s := &Server{dir: dir, log: filepath.Join(dir, "weed.log")}
	for i := range s.ports {
		p, err := freeport.Pick("tcp")
		if err != nil {
			return nil, err
		}
		s.ports[i] = p
	}
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	for _, b := range buckets {
		if err := s.CreateBucket(ctx, b); err != nil {
			s.Kill()
			return nil, err
		}
	}
	return s, nil
}

// Endpoint is the S3 gateway's base URL.
func (s *Server) Endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(s.ports[3]) }

// Restart starts the server (again) on the same ports and data directory and
// waits until the S3 gateway answers.
func (s *Server) Restart(ctx context.Context) error {
	bin, err := Bin()
	if err != nil {
		return err
	}
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("seaweedfs: %w", err)
	}
	logFile, err := os.OpenFile(s.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("seaweedfs: log: %w", err)
	}
	p := s.ports
	s.cmd = exec.Command(bin, "server", "-dir="+data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port="+strconv.Itoa(p[0]), "-volume.port="+strconv.Itoa(p[1]),
		"-filer.port="+strconv.Itoa(p[2]), "-s3", "-s3.port="+strconv.Itoa(p[3]),
		"-master.port.grpc="+strconv.Itoa(p[4]), "-volume.port.grpc="+strconv.Itoa(p[5]),
		"-filer.port.grpc="+strconv.Itoa(p[6]), "-s3.port.grpc="+strconv.Itoa(p[7]),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=256")
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// weed turns AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY into an identity and
	// then refuses unsigned requests; the clients' credentials are not its own.
	s.cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AWS_") })
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("seaweedfs: start: %w", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		logFile.Close()
		close(done)
	}(s.cmd, s.done)
	return s.waitReady(ctx)
}

// waitReady polls the S3 gateway until a bucket listing succeeds.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint()+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("seaweedfs: exited while starting: %s", s.logTail())
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("seaweedfs: S3 gateway not ready: %w; log tail:\n%s", ctx.Err(), s.logTail())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// CreateBucket creates a bucket (PUT /bucket); an existing one is fine.
func (s *Server) CreateBucket(ctx context.Context, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.Endpoint()+"/"+bucket, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusConflict {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		// Right after start the filer may not have a volume yet: retry briefly.
		select {
		case <-ctx.Done():
			return fmt.Errorf("seaweedfs: create bucket %s: %w (last: %v)", bucket, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop ends the server: SIGTERM, then SIGKILL after a short grace (weed does
// not exit promptly on SIGTERM).
func (s *Server) Stop() { s.halt(2 * time.Second) }

// Kill ends the server at once, as a crash would.
func (s *Server) Kill() { s.halt(0) }

// Pause stops the server's process (SIGSTOP): its sockets still accept
// connections and take requests, and nothing answers them, as with a hung
// server. Resume continues it.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

func (s *Server) halt(grace time.Duration) {
	select {
	case <-s.done:
		return
	default:
	}
	if grace > 0 {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			return
		case <-time.After(grace):
		}
	}
	s.cmd.Process.Kill()
	<-s.done
}

// logTail is the end of the server's log, for error messages (the test's
// temp directory holding the log is gone once the test fails).
func (s *Server) logTail() string {
	data, _ := os.ReadFile(s.log)
	return string(data[max(0, len(data)-2000):])
}
