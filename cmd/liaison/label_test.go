package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const td = "../../internal/label/testdata/"

func TestLabelCLI(t *testing.T) {
	pols := []string{"--policy", td + "xaa-national.xml", "--policy", td + "xbb-national.xml"}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{append([]string{"label", "check", "--label", td + "xaa-secret-rel.xml", "--clearance", td + "xaa-clearance-xbb.xml"}, pols...), 0, "GRANT"},
		{append([]string{"label", "check", "--lang", "fr", "--label", td + "xaa-secret-rel.xml"}, pols...), 0, "COMMUNICABLE A XAA, XBB"},
		{append([]string{"label", "translate", "--label", td + "xaa-secret-rel.xml", "--to", "XBB-NATIONAL"}, pols...), 0, "<alternativeConfidentialityLabel"},
		{append([]string{"label", "translate", "--label", td + "xaa-secret-rel.xml", "--to", "XCC"}, pols...), 1, "unknown policy"},
		{[]string{"label", "policy", "--policy", td + "xaa-national.xml"}, 0, "Releasable To [enumeratedPermissive]: XAA, XBB, XCC, COALITION"},
		{[]string{"label", "check", "--label", td + "xaa-secret-rel.xml"}, 2, "--policy"},
		{[]string{"label", "check", "--help"}, 0, "Usage: liaison label check"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: code %d, out %q err %q; want %d and %q", tc.args[:2], code, out.String(), errb.String(), tc.code, tc.want)
		}
	}
	var out bytes.Buffer
	if code := run(append([]string{"label", "check", "--json", "--label", td + "xaa-secret-rel.xml", "--clearance", td + "xaa-clearance-xbb.xml"}, pols...), &out, &out); code != 0 {
		t.Fatalf("json check: %d %s", code, out.String())
	}
	var res struct {
		Valid bool  `json:"valid"`
		Grant *bool `json:"grant"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.Valid || res.Grant == nil || !*res.Grant {
		t.Errorf("json: %v %+v", err, res)
	}
}
