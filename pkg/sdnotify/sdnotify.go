// Package sdnotify implements the client side of sd_notify(3): one datagram
// to the socket systemd names in $NOTIFY_SOCKET. Outside a Type=notify unit
// every call is a no-op.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notify sends state lines such as "READY=1" or "STATUS=archiving 3". It
// reports false when there is no notification socket.
func Notify(state ...string) (bool, error) {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return false, nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(state, "\n"))); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}

// Ready tells systemd that start-up finished, with a status line.
func Ready(status string) (bool, error) { return Notify("READY=1", "STATUS="+oneLine(status)) }

// Watchdog proves liveness to WatchdogSec=, with a status line.
func Watchdog(status string) (bool, error) { return Notify("WATCHDOG=1", "STATUS="+oneLine(status)) }

// WatchdogInterval is how often to call Watchdog: half the unit's WatchdogSec=,
// or 0 when no watchdog is armed for this process.
func WatchdogInterval() time.Duration {
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
