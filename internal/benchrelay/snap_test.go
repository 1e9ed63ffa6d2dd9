package main

import (
	"net"
	"os"
	"testing"
)

func TestCPUSeconds(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
		ok         bool
	}{
		{"plain", "42 (ec-node) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0", 3.25, true},
		{"name with spaces and parens", "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0", 0.03, true},
		{"no name", "7 a R 1", 0, false},
		{"too short", "7 (a) R 1 7", 0, false},
		{"not a number", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 2 0", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cpuSeconds([]byte(tc.stat))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("cpuSeconds = %v, %v; want %v, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestRSSKB(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int64
		ok           bool
	}{
		{"present", "Name:\tmoq-relay\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n", 12345, true},
		{"kernel thread", "Name:\tkworker\nThreads:\t1\n", 0, false},
		{"not a number", "VmRSS:\t  x kB\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rssKB([]byte(tc.status))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("rssKB = %v, %v; want %v, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestBusySeconds(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
		ok         bool
	}{
		{"total line", "cpu  100 20 30 9000 50 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", 1.56, true},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8 0 0\n", 0, false},
		{"short", "cpu  1 2 3\n", 0, false},
		{"not a number", "cpu  1 x 3 4 5 6 7 8\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := busySeconds([]byte(tc.stat))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("busySeconds = %v, %v; want %v, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestUDPRcvbufErrors(t *testing.T) {
	head := "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
	for _, tc := range []struct {
		name, snmp string
		want       int64
		ok         bool
	}{
		{"present", "Ip: Forwarding\nIp: 1\n" + head + "Udp: 4305665 61028 1547 2731273 1546 0\nUdpLite: InDatagrams RcvbufErrors\nUdpLite: 0 9\n", 1546, true},
		{"values missing", head, 0, false},
		{"no udp", "Ip: Forwarding\nIp: 1\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := udpRcvbufErrors([]byte(tc.snmp))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("udpRcvbufErrors = %v, %v; want %v, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestUDPSocketDrops(t *testing.T) {
	table := "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		" 3868: 0100007F:80E0 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 631589 2 0000000031fcf437 0\n" +
		" 9611: 0100007F:D74F 00000000:0000 07 00000000:00001200 00:00000000 00000000     0        0 633446 2 0000000095f10084 17\n" +
		" short line\n"
	drops := map[string]int64{"633446": 3}
	udpSocketDrops([]byte(table), drops)
	if len(drops) != 2 || drops["631589"] != 0 || drops["633446"] != 20 {
		t.Fatalf("drops = %v, want 631589:0 and 633446:3+17", drops)
	}
}

// The test process's own UDP socket is found through its descriptors.
func TestProcUDPDrops(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inodes := map[string]int64{}
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		if b, err := os.ReadFile(table); err == nil {
			udpSocketDrops(b, inodes)
		}
	}
	for inode := range inodes {
		inodes[inode] = 1
	}
	if got := procUDPDrops(os.Getpid(), inodes); got < 1 {
		t.Fatalf("procUDPDrops = %d with every socket counting 1, want at least 1 (our socket)", got)
	}
}
