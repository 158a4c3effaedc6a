package linksim

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echo starts a TCP echo server.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, addr string, n int) (time.Duration, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("z"), n)
	start := time.Now()
	go c.Write(msg)
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		return 0, err
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("bytes changed in transit")
	}
	return time.Since(start), nil
}

func TestRateAndDelay(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		n    int
		min  time.Duration
	}{
		{"delay", Config{Delay: 100 * time.Millisecond}, 10, 200 * time.Millisecond},
		// 40 KB at 800 kbit/s is 0.4 s each way; the echo pipelines them.
		{"rate", Config{Rate: 800_000}, 40_000, 380 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			px, err := New(echo(t), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer px.Close()
			d, err := roundTrip(t, px.Addr(), tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if d < tc.min {
				t.Errorf("round trip of %d bytes took %v, want >= %v", tc.n, d, tc.min)
			}
			if up, down := px.Bytes(); up != int64(tc.n) || down != int64(tc.n) {
				t.Errorf("counted %d up %d down, want %d each", up, down, tc.n)
			}
		})
	}
}

func TestPartitionAndCut(t *testing.T) {
	px, err := New(echo(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	px.Partition()
	if _, err := roundTrip(t, px.Addr(), 10); err == nil {
		t.Error("round trip through a partition succeeded")
	}
	px.Heal()
	if _, err := roundTrip(t, px.Addr(), 10); err != nil {
		t.Errorf("after heal: %v", err)
	}

	cut, err := New(echo(t), Config{CutEvery: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	defer cut.Close()
	if _, err := roundTrip(t, cut.Addr(), 10); err == nil {
		t.Error("round trip through a certain cut succeeded")
	}
	if cut.Cuts() == 0 {
		t.Error("no cut counted")
	}
}
