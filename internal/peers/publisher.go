package peers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// PublisherOptions configures StartPublisher.
type PublisherOptions struct {
	// Root is the session root path the publisher connects to (default "anon").
	Root string
	// Version forces the publisher's moq version (--connect-version); empty lets
	// it negotiate (moq-cli 0.14.8 prefers moq-lite-06).
	Version string
	// RawQUIC makes the publisher dial the relay over raw QUIC (QUICURL)
	// instead of WebTransport.
	RawQUIC bool
	// LogDir receives ffmpeg.log and publisher.log (required).
	LogDir string
	// Size is the test pattern size (default "320x240"), FPS its rate (default 30).
	Size string
	FPS  int
}

// Publisher is ffmpeg (H.264 testsrc + AAC sine, fMP4/CMAF on stdout) piped
// into `moq ... import fmp4`, publishing one broadcast to a relay.
type Publisher struct {
	ffmpeg, moq *process
	LogDir      string
}

// StartPublisher starts the pipeline. The keyframe interval is one second
// (-g = FPS), so every video group holds one second of frames.
func StartPublisher(ctx context.Context, relay *Relay, broadcast string, logf Logf, opts PublisherOptions) (*Publisher, error) {
	dir, err := BinDir()
	if err != nil {
		return nil, err
	}
	if opts.Root == "" {
		opts.Root = "anon"
	}
	if opts.Size == "" {
		opts.Size = "320x240"
	}
	if opts.FPS == 0 {
		opts.FPS = 30
	}
	fps := strconv.Itoa(opts.FPS)
	ff := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "testsrc=size="+opts.Size+":rate="+fps,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", fps, "-keyint_min", fps, "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "mp4", "-movflags", "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame", "-")
	url := relay.URL(opts.Root)
	if opts.RawQUIC {
		url = relay.QUICURL(opts.Root)
	}
	args := []string{"--connect", url, "--connect-tls-fingerprint", relay.Fingerprint(),
		"--broadcast", broadcast}
	if opts.Version != "" {
		args = append(args, "--connect-version", opts.Version)
	}
	args = append(args, "import", "fmp4")
	pub := exec.Command(filepath.Join(dir, "moq"), args...)

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("peers: pipe: %w", err)
	}
	ff.Stdout = pw
	pub.Stdin = pr
	logf("peers: starting %s | %s", ff.String(), pub.String())
	p := &Publisher{LogDir: opts.LogDir}
	if p.moq, err = start(pub, filepath.Join(opts.LogDir, "publisher.log")); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pr.Close() // the child holds its own copy
	p.ffmpeg, err = start(ff, filepath.Join(opts.LogDir, "ffmpeg.log"))
	pw.Close()
	if err != nil {
		_ = p.moq.stop(ctx, true)
		return nil, err
	}
	return p, nil
}

// Stop ends ffmpeg, then the publisher (SIGINT).
func (p *Publisher) Stop() error { return p.halt(false) }

// Pause stops the encoder (SIGSTOP) and leaves the publisher connected: the
// relay goes on announcing a broadcast in which nothing new arrives. Kill
// still ends both.
func (p *Publisher) Pause() error { return p.ffmpeg.cmd.Process.Signal(syscall.SIGSTOP) }

// Kill ends both with SIGKILL.
func (p *Publisher) Kill() error { return p.halt(true) }

func (p *Publisher) halt(hard bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err1 := p.ffmpeg.stop(ctx, hard)
	err2 := p.moq.stop(ctx, hard)
	if err1 != nil {
		return err1
	}
	return err2
}

// Logs returns the tail of the publisher's and ffmpeg's logs, for failures.
func (p *Publisher) Logs() string {
	return "publisher:\n" + tail(filepath.Join(p.LogDir, "publisher.log"), 15) +
		"\nffmpeg:\n" + tail(filepath.Join(p.LogDir, "ffmpeg.log"), 5)
}
