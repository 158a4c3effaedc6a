package agreement

import (
	"encoding/base64"
	"strings"
	"testing"
)

func signedV1(t *testing.T) *Document {
	d := load(t, "cis-moa-v1.yaml")
	approveAndSign(t, d, "2005-10-01")
	return d
}

func TestTermination(t *testing.T) {
	d := signedV1(t)
	// 180 days' notice given on 2015-01-01 takes effect on 2015-06-30.
	if err := d.AddNotice(NoticeTerminate, "USA", date(t, "2015-01-01"), testKey(t, "USA")); err != nil {
		t.Fatal(err)
	}
	if err := d.VerifySignatures(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   string
		want Phase
	}{
		{"2014-12-31", InForce},
		{"2015-03-01", InForce},
		{"2015-06-29T23:59:59Z", InForce},
		{"2015-06-30", Terminated},
		{"2021-01-01", Terminated},
	} {
		if st := d.StatusAt(date(t, tc.at)); st.Phase != tc.want {
			t.Errorf("at %s: %v, want %v", tc.at, st, tc.want)
		}
	}
	st := d.StatusAt(date(t, "2015-03-01"))
	if !st.Until.Equal(date(t, "2015-06-30")) || !strings.Contains(st.Reason, "terminated by USA") {
		t.Errorf("in force under notice: %+v", st)
	}
	set, err := NewSet(d)
	if err != nil {
		t.Fatal(err)
	}
	if p := set.May("PAK", "USA", "ops-liaison", date(t, "2016-01-01")); p.Allowed || !strings.Contains(p.Reason, "terminated") {
		t.Errorf("May after termination: %+v", p)
	}
	// The YAML form keeps the notice and its signature.
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if st := back.StatusAt(date(t, "2016-01-01")); st.Phase != Terminated {
		t.Errorf("after YAML round trip: %v", st)
	}
}

func TestSuspensionAndResumption(t *testing.T) {
	d := signedV1(t)
	steps := []struct {
		kind, party, on string
	}{
		{NoticeSuspend, "PAK", "2011-11-27"},
		{NoticeSuspend, "USA", "2011-12-01"},
		{NoticeResume, "USA", "2012-01-15"},
		{NoticeResume, "PAK", "2012-07-03"},
	}
	for _, s := range steps {
		if err := d.AddNotice(s.kind, s.party, date(t, s.on), testKey(t, s.party)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		at   string
		want Phase
		who  string
	}{
		{"2011-11-26", InForce, ""},
		{"2011-11-27", Suspended, "PAK"},
		{"2011-12-02", Suspended, "PAK, USA"},
		{"2012-02-01", Suspended, "PAK"}, // USA's resumption does not lift PAK's suspension
		{"2012-07-03", InForce, ""},
		{"2019-01-01", InForce, ""},
		{"2021-01-01", Expired, ""},
	} {
		st := d.StatusAt(date(t, tc.at))
		if st.Phase != tc.want || !strings.Contains(st.Reason, tc.who) {
			t.Errorf("at %s: %v, want %v %s", tc.at, st, tc.want, tc.who)
		}
	}
	if st := d.StatusAt(date(t, "2013-01-01")); !st.Since.Equal(date(t, "2012-07-03")) {
		t.Errorf("in force since %v, want the resumption", st.Since)
	}
	set, err := NewSet(d)
	if err != nil {
		t.Fatal(err)
	}
	if p := set.May("USA", "PAK", "ops-liaison", date(t, "2012-02-01")); p.Allowed || !strings.Contains(p.Reason, "suspended") {
		t.Errorf("May while suspended: %+v", p)
	}
	if p := set.May("USA", "PAK", "ops-liaison", date(t, "2012-08-01")); !p.Allowed {
		t.Errorf("May after resumption: %+v", p)
	}
}

func TestNoticesRefused(t *testing.T) {
	d := signedV1(t)
	if err := d.AddNotice(NoticeTerminate, "PAK", date(t, "2015-01-01"), testKey(t, "USA")); err == nil {
		t.Error("notice with another party's key accepted")
	}
	if err := d.AddNotice("withdraw", "PAK", date(t, "2015-01-01"), testKey(t, "PAK")); err == nil {
		t.Error("unknown notice kind accepted")
	}
	if err := d.AddNotice(NoticeSuspend, "IND", date(t, "2015-01-01"), testKey(t, "IND")); err == nil {
		t.Error("notice by a non-party accepted")
	}
	unsigned := load(t, "cis-moa-v1.yaml")
	if err := unsigned.AddNotice(NoticeSuspend, "PAK", date(t, "2015-01-01"), testKey(t, "PAK")); err == nil {
		t.Error("notice on an unsigned agreement accepted")
	}

	// A forged notice is ignored by StatusAt and refused by VerifySignatures
	// and the Set.
	if err := d.AddNotice(NoticeSuspend, "PAK", date(t, "2015-01-01"), testKey(t, "PAK")); err != nil {
		t.Fatal(err)
	}
	d.Notices[0].Date = date(t, "2010-01-01") // moved after signing
	if st := d.StatusAt(date(t, "2012-01-01")); st.Phase != InForce {
		t.Errorf("forged notice honoured: %v", st)
	}
	if err := d.VerifySignatures(); err == nil || !strings.Contains(err.Error(), "suspend notice by PAK") {
		t.Errorf("VerifySignatures: %v", err)
	}
	if _, err := NewSet(d); err == nil {
		t.Error("Set accepted a forged notice")
	}
	d.Notices[0].Signature = base64.StdEncoding.EncodeToString(make([]byte, 64))
	if st := d.StatusAt(date(t, "2016-01-01")); st.Phase != InForce {
		t.Errorf("zero signature honoured: %v", st)
	}
}

func TestNoticeDeliveredLater(t *testing.T) {
	d := signedV1(t)
	set, err := NewSet(d)
	if err != nil {
		t.Fatal(err)
	}
	later := *d
	later.Notices = nil
	if err := later.AddNotice(NoticeTerminate, "PAK", date(t, "2012-01-01"), testKey(t, "PAK")); err != nil {
		t.Fatal(err)
	}
	if err := set.Add(&later); err != nil {
		t.Fatal(err)
	}
	if got := set.InForce(date(t, "2013-01-01")); len(got) != 0 {
		t.Errorf("terminated agreement still in force: %v", got)
	}
	// A copy without the notice cannot wind it back.
	if err := set.Add(d); err == nil || !strings.Contains(err.Error(), "drops the terminate notice") {
		t.Errorf("dropping a notice: %v", err)
	}
}
