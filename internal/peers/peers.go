// Package peers starts the REAL Media-over-QUIC peers for end-to-end tests:
// moq-relay and the moq-cli publisher (`moq`) at the versions pinned in
// scripts/peers.env, installed by scripts/install-peers.sh, plus ffmpeg.
package peers

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Logf is where helpers report what they run (testing.T.Logf fits).
type Logf func(format string, args ...any)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// BinDir returns the directory holding moq-relay and moq: $EC_PEERS_BIN if set,
// else the last line printed by scripts/install-peers.sh (which builds them
// once and then only checks its cache). The result is cached per process.
func BinDir() (string, error) {
	binOnce.Do(func() {
		if dir := os.Getenv("EC_PEERS_BIN"); dir != "" {
			binDir = dir
			return
		}
		script := filepath.Join(repoRoot(), "scripts", "install-peers.sh")
		out, err := exec.Command("bash", script).Output()
		if err != nil {
			binErr = fmt.Errorf("peers: %s: %w", script, err)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		binDir = strings.TrimSpace(lines[len(lines)-1])
	})
	if binErr != nil {
		return "", binErr
	}
	for _, name := range []string{"moq-relay", "moq"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return "", fmt.Errorf("peers: %s missing from %s: %w", name, binDir, err)
		}
	}
	return binDir, nil
}

// repoRoot is the checkout this file lives in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// process is a started peer whose stderr (and stdout, unless already wired) go
// to a log file.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(cmd *exec.Cmd, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("peers: log file: %w", err)
	}
	cmd.Stderr = logFile
	if cmd.Stdout == nil { // a pipeline stage keeps its stdout
		cmd.Stdout = logFile
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("peers: start %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM (or SIGKILL when hard) and waits for the exit.
func (p *process) stop(ctx context.Context, hard bool) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	sig := os.Interrupt
	if hard {
		sig = os.Kill
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return ctx.Err()
	}
}

// tail returns the last n lines of a log file, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
