package fedtest

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

// bigCluster is USA and PAK under an agreement whose channel takes 64 MiB
// messages, USA dialling PAK through a link of rate bits per second.
func bigCluster(t *testing.T, rate int) *Cluster {
	c := NewCluster(t, linksim.Config{Rate: rate}, "USA", "PAK")
	Deal{ID: "us-pak", Effective: T0.Add(-time.Hour), Expiry: T0.AddDate(1, 0, 0), MaxSize: 64 << 20, Parties: c.All("USA", "PAK")}.Install(t)
	Eventually(t, 10*time.Second, "link up", func() bool { return c.P("USA").LinkState("PAK") == "up" })
	return c
}

func bigMsg(t *testing.T, p *Party, c *Cluster, size int) *message.Message {
	m := p.Msg(c.Clock.Now(), message.Routine, "", "USA", "PAK")
	m.ContentType = "application/octet-stream"
	m.Body = make([]byte, size)
	rand.Read(m.Body) // incompressible: the wire is as big as the body
	return m
}

// TestFlashOvertakesBigRoutine: a FLASH sent while a 50 MiB ROUTINE is on
// a ~100 Mbit/s link arrives before the ROUTINE finishes.
func TestFlashOvertakesBigRoutine(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 50 MiB")
	}
	c := bigCluster(t, 100_000_000)
	usa, pak := c.P("USA"), c.P("PAK")
	big := bigMsg(t, usa, c, 50<<20)
	usa.Submit(t, big)
	pr := c.Proxies["PAK"]
	Eventually(t, 20*time.Second, "the big transfer under way", func() bool { up, _ := pr.Bytes(); return up > 4<<20 })
	flash := usa.Msg(c.Clock.Now(), message.Flash, "FLASH: overtake", "USA", "PAK")
	sent := time.Now()
	usa.Submit(t, flash)
	Eventually(t, 20*time.Second, "the FLASH arrives", func() bool { return len(pak.Received(t, "USA")) > 0 })
	got := pak.Received(t, "USA")
	if got[0].ID != flash.ID {
		t.Fatalf("first arrival is %s (%s), want the FLASH", got[0].ID, got[0].Precedence)
	}
	up, _ := pr.Bytes()
	t.Logf("FLASH arrived %v after submission, with %.1f MiB of the ROUTINE forwarded", time.Since(sent).Round(time.Millisecond), float64(up)/(1<<20))
	Eventually(t, 60*time.Second, "the ROUTINE arrives", func() bool { return len(pak.Received(t, "USA")) == 2 })
	if r := pak.Received(t, "USA")[1]; r.ID != big.ID || !bytes.Equal(r.Body, big.Body) {
		t.Fatal("the big message arrived altered")
	}
}

// TestResumeAfterCut: a link cut in the middle of a 24 MiB transfer
// resumes from the offset the receiver holds, because the sender
// re-leases the same sealed bytes: the link carries the message about
// once, not once and a half.
func TestResumeAfterCut(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 24 MiB")
	}
	const size = 24 << 20
	c := bigCluster(t, 100_000_000)
	usa, pak := c.P("USA"), c.P("PAK")
	big := bigMsg(t, usa, c, size)
	usa.Submit(t, big)
	pr := c.Proxies["PAK"]
	Eventually(t, 20*time.Second, "half the transfer done", func() bool { up, _ := pr.Bytes(); return up > size/2 })
	pr.CutAll()
	cutAt, _ := pr.Bytes()
	Eventually(t, 60*time.Second, "the message arrives after the cut", func() bool { return len(pak.Received(t, "USA")) == 1 })
	if r := pak.Received(t, "USA")[0]; !bytes.Equal(r.Body, big.Body) {
		t.Fatal("the resumed message arrived altered")
	}
	up, _ := pr.Bytes()
	t.Logf("cut at %.1f MiB; %.1f MiB forwarded in all for a %d MiB message", float64(cutAt)/(1<<20), float64(up)/(1<<20), size>>20)
	if up > size+size/4 {
		t.Fatalf("%d bytes forwarded for a %d-byte message: the transfer restarted instead of resuming", up, size)
	}
}
