package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickIsFreeAndOutsideTheEphemeralRange(t *testing.T) {
	for range 20 {
		port, err := Pick("tcp", "udp")
		if err != nil {
			t.Fatal(err)
		}
		if port < from || port >= to {
			t.Fatalf("port %d outside [%d, %d)", port, from, to)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("tcp %s: %v", addr, err)
		}
		l.Close()
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("udp %s: %v", addr, err)
		}
		c.Close()
	}
}

func TestPickSkipsATakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	if free(taken, []string{"tcp"}) {
		t.Errorf("port %d reported free while listened on", taken)
	}
}
