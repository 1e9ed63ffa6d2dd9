package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux
// architecture Go supports (the kernel ABI fixes it, whatever CONFIG_HZ is).
const clockTicks = 100

// snapshot is one line of `snap`: CPU time used so far, and resident memory,
// of each process.
type snapshot struct {
	UnixUs  int64  `json:"unix_us"`
	LoadAvg string `json:"loadavg"` // 1, 5 and 15 minute load averages
	// BusyS is the CPU time of the whole machine so far, all cores, not idle
	// or waiting for I/O: what every process, ours or not, used.
	BusyS float64 `json:"busy_s"`
	// UDPRcvbufErrors counts datagrams dropped so far, machine-wide, because
	// a UDP socket's receive buffer was full: QUIC loss on loopback.
	UDPRcvbufErrors int64      `json:"udp_rcvbuf_errors"`
	Procs           []procTime `json:"procs"`
}

type procTime struct {
	Role  string  `json:"role"`
	PID   int     `json:"pid"`
	CPUs  float64 `json:"cpu_s"`  // user + system
	RSSKB int64   `json:"rss_kb"` // VmRSS
	// UDPDrops counts datagrams dropped so far on the process's UDP sockets
	// because their receive buffer was full (/proc/net/udp "drops").
	UDPDrops int64 `json:"udp_drops"`
}

func snapMain(args []string) error {
	s := snapshot{UnixUs: time.Now().UnixMicro()}
	drops := map[string]int64{} // socket inode → drops
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		if b, err := os.ReadFile(table); err == nil {
			udpSocketDrops(b, drops)
		}
	}
	for _, a := range args {
		role, p, ok := strings.Cut(a, "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || pid <= 0 {
			return fmt.Errorf("want role=PID, got %q", a)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return fmt.Errorf("%s: %w", role, err)
		}
		cpu, err := cpuSeconds(stat)
		if err != nil {
			return fmt.Errorf("%s pid %d: %w", role, pid, err)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return fmt.Errorf("%s: %w", role, err)
		}
		rss, err := rssKB(status)
		if err != nil {
			return fmt.Errorf("%s pid %d: %w", role, pid, err)
		}
		s.Procs = append(s.Procs, procTime{Role: role, PID: pid, CPUs: cpu, RSSKB: rss, UDPDrops: procUDPDrops(pid, drops)})
	}
	if stat, err := os.ReadFile("/proc/stat"); err == nil {
		s.BusyS, _ = busySeconds(stat)
	}
	if snmp, err := os.ReadFile("/proc/net/snmp"); err == nil {
		s.UDPRcvbufErrors, _ = udpRcvbufErrors(snmp)
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(load)); len(f) >= 3 {
			s.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return json.NewEncoder(os.Stdout).Encode(s)
}

// cpuSeconds returns utime + stime from the contents of /proc/PID/stat.
func cpuSeconds(stat []byte) (float64, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("stat without a command name")
	}
	f := strings.Fields(string(stat[end+1:]))
	const utime = 14 - 3 // fields counted from 1; f starts at field 3 (state)
	if len(f) <= utime+1 {
		return 0, fmt.Errorf("stat has %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseUint(f[utime], 10, 64)
	s, err2 := strconv.ParseUint(f[utime+1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime/stime %q %q not numbers", f[utime], f[utime+1])
	}
	return float64(u+s) / clockTicks, nil
}

// rssKB returns VmRSS, in kB, from the contents of /proc/PID/status.
func rssKB(status []byte) (int64, error) {
	for _, line := range strings.Split(string(status), "\n") {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status VmRSS %q: %w", v, err)
		}
		return kb, nil
	}
	return 0, fmt.Errorf("status has no VmRSS line")
}

// busySeconds returns the machine's busy CPU time from the contents of
// /proc/stat: the "cpu" line's user, nice, system, irq, softirq and steal.
func busySeconds(stat []byte) (float64, error) {
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("stat's first line %q is not the cpu total", line)
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // idle (4) and iowait (5) left out
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat cpu field %d %q: %w", i, f[i], err)
		}
		busy += v
	}
	return float64(busy) / clockTicks, nil
}

// udpRcvbufErrors returns Udp RcvbufErrors from the contents of /proc/net/snmp,
// where a line of field names precedes the line of their values.
func udpRcvbufErrors(snmp []byte) (int64, error) {
	var names []string
	for _, line := range strings.Split(string(snmp), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("snmp has no Udp RcvbufErrors")
}

// udpSocketDrops adds each socket's drops, by inode, from the contents of
// /proc/net/udp or udp6 (after the header line: inode is field 10, drops 13).
func udpSocketDrops(table []byte, drops map[string]int64) {
	lines := strings.Split(string(table), "\n")
	for _, line := range lines[min(1, len(lines)):] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		if n, err := strconv.ParseInt(f[12], 10, 64); err == nil {
			drops[f[9]] += n
		}
	}
}

// procUDPDrops sums the drops of the UDP sockets process pid holds open; a
// process whose descriptors cannot be read counts 0.
func procUDPDrops(pid int, drops map[string]int64) int64 {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var n int64
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			n += drops[strings.TrimSuffix(inode, "]")]
		}
	}
	return n
}
