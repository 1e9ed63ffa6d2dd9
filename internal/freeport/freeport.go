// Package freeport picks loopback port numbers for the servers that tests start
// (moq-relay, SeaweedFS).
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
)

// Ports are picked below Linux's default ephemeral range (32768–60999). A port
// the kernel handed out for ":0" and that was closed again can be taken as the
// source port of an outgoing connection before the server listens on it (or
// listens on it again, after a restart), and the server then fails with
// "address already in use"; seen with SeaweedFS's own connections.
const from, to = 20000, 32768

// Pick returns a port number free on 127.0.0.1 for every network given ("tcp",
// "udp"), so that one number can serve a server's QUIC and HTTP listeners.
func Pick(networks ...string) (int, error) {
	for range 100 {
		port := from + rand.IntN(to-from)
		if free(port, networks) {
			return port, nil
		}
	}
	return 0, errors.New("freeport: no free port on 127.0.0.1")
}

func free(port int, networks []string) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for _, network := range networks {
		switch network {
		case "udp":
			c, err := net.ListenPacket(network, addr)
			if err != nil {
				return false
			}
			c.Close()
		default:
			l, err := net.Listen(network, addr)
			if err != nil {
				return false
			}
			l.Close()
		}
	}
	return true
}
