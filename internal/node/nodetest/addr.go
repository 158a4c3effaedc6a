package nodetest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreeAddr returns a loopback address that is free now, for a node
// process that a test stops and starts again on it. The port is below the
// system's ephemeral range when it can be: a port that listening on :0
// hands out comes from that range, and while the node is down an outgoing
// connection (a partner redialling it, a client polling) may take it as
// its source port, so that the restarted node cannot listen on it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	if lo := ephemeralLow(); lo > minPort {
		for range 200 {
			port := minPort + rand.IntN(lo-minPort)
			if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				addr := ln.Addr().String()
				ln.Close()
				return addr
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// minPort is the lowest port FreeAddr picks: above the well-known and most
// registered service ports.
const minPort = 20000

// ephemeralLow is the start of the system's ephemeral port range (Linux),
// or 0 if unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}
