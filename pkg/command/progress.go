package command

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// progressBar is the one-line progress display of a long command on a
// terminal (stderr): a bar of the fraction done and a caption, redrawn in
// place. It is only made when progressWanted says so, so that a log file or a
// pipe gets nothing but the final summary.
type progressBar struct {
	w       io.Writer
	columns int // terminal width; the line must not wrap, or \r redraws the wrong line
}

func newProgressBar(w io.Writer) *progressBar {
	columns := 80
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			columns = int(ws.Col)
		}
	}
	return &progressBar{w: w, columns: columns}
}

// draw replaces the line with the bar at fraction done (0..1) and caption.
func (b *progressBar) draw(done float64, caption string) {
	fmt.Fprint(b.w, "\r\033[K"+barLine(done, caption, b.columns))
}

// clear erases the line, before the summary is printed.
func (b *progressBar) clear() { fmt.Fprint(b.w, "\r\033[K") }

// barLine renders "[=====>    ]  45%  caption" in at most columns-1 runes
// (a line that fills the last column wraps on some terminals).
func barLine(done float64, caption string, columns int) string {
	done = min(max(done, 0), 1)
	width := min(30, max(columns/4, 10))
	filled := int(done * float64(width))
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	line := []rune(fmt.Sprintf("[%s] %3.0f%%  %s", bar, 100*done, caption))
	if limit := max(columns-1, width+7); len(line) > limit {
		line = line[:limit]
	}
	return string(line)
}

// eta estimates the time left from the time spent on the fraction done.
func eta(elapsed time.Duration, done float64) string {
	if done <= 0 || done >= 1 {
		return ""
	}
	left := time.Duration(float64(elapsed) * (1 - done) / done)
	return "  ETA " + left.Round(time.Second).String()
}

// progressWanted decides --progress: auto means only when w is a terminal.
func progressWanted(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		f, ok := w.(*os.File)
		if !ok {
			return false, nil
		}
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		return err == nil, nil
	default:
		return false, usageErrorf("--progress: want auto, always or never, got %q", mode)
	}
}
