package agreement

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestCachedStatusMatches asks a set about times around every instant at
// which a state can change, in random order (so the cache is hit, missed
// and revisited from both sides), and checks each answer against the
// uncached Document.StatusAt, and Governs against May.
func TestCachedStatusMatches(t *testing.T) {
	d := signedV1(t)
	for _, s := range []struct{ kind, party, on string }{
		{NoticeSuspend, "PAK", "2011-11-27"},
		{NoticeSuspend, "USA", "2011-12-01"},
		{NoticeResume, "USA", "2012-01-15"},
		{NoticeResume, "PAK", "2012-07-03"},
		{NoticeTerminate, "USA", "2015-01-01"},
	} {
		if err := d.AddNotice(s.kind, s.party, date(t, s.on), testKey(t, s.party)); err != nil {
			t.Fatal(err)
		}
	}
	set, err := NewSet(d)
	if err != nil {
		t.Fatal(err)
	}
	e := set.byID[d.ID][0]
	var times []time.Time
	for _, b := range e.instants() {
		for _, off := range []time.Duration{-time.Hour, -time.Nanosecond, 0, time.Nanosecond, time.Hour} {
			times = append(times, b.Add(off))
		}
	}
	times = append(times, date(t, "1999-01-01"), date(t, "2040-01-01"))
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		rng.Shuffle(len(times), func(i, j int) { times[i], times[j] = times[j], times[i] })
		for _, at := range times {
			want := d.StatusAt(at)
			got := e.status(at)
			if got.Phase != want.Phase || got.Reason != want.Reason || !got.Since.Equal(want.Since) || !got.Until.Equal(want.Until) {
				t.Fatalf("round %d at %s: cached %+v, want %+v", round, at.Format(time.RFC3339Nano), got, want)
			}
			for _, pair := range [][2]string{{"USA", "PAK"}, {"PAK", "USA"}, {"USA", "USA"}} {
				p := set.May(pair[0], pair[1], "ops-liaison", at)
				gd, gc, ok := set.Governs(pair[0], pair[1], "ops-liaison", at)
				if ok != p.Allowed || gd != p.Agreement || gc != p.Channel {
					t.Fatalf("at %s %s->%s: Governs %v %v %v, May %+v", at, pair[0], pair[1], gd != nil, gc != nil, ok, p)
				}
			}
		}
	}
	if _, _, ok := set.Governs("USA", "PAK", "no-such-channel", date(t, "2013-01-01")); ok {
		t.Error("Governs allowed a channel the agreement does not have")
	}
}
