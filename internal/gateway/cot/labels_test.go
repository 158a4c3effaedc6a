package cot

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMappingLabeler(t *testing.T) {
	l := testLabeler()
	l.Parties = []string{"XAA", "XBB"}
	tests := []struct {
		name           string
		access, caveat string
		rel            []string
		err            error
	}{
		{"mapped", "unclassified", "FOUO", []string{"XAA", "XBB"}, nil},
		{"no caveat", "Restricted", "", []string{"XAA"}, nil},
		{"unmarked", "", "", nil, ErrUnmapped},
		{"unknown access", "Cosmic", "", []string{"XAA"}, ErrUnmapped},
		{"unknown party", "Unclassified", "", []string{"XZZ"}, ErrUnmapped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lab, err := l.FromCoT(tt.access, tt.caveat, tt.rel, "ch")
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			access, caveat, rel, err := l.ToCoT(lab)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.EqualFold(access, tt.access) {
				t.Errorf("access %q, want %q", access, tt.access)
			}
			if caveat != tt.caveat || !slices.Equal(rel, tt.rel) {
				t.Errorf("round trip: %q %q, want %q %q\n%s", caveat, rel, tt.caveat, tt.rel, lab)
			}
		})
	}
	if _, _, _, err := l.ToCoT([]byte(`<!DOCTYPE x><x/>`)); err == nil {
		t.Error("DTD in label accepted")
	}
	if _, _, _, err := l.ToCoT(l.Label("TOP SECRET", nil, nil)); !errors.Is(err, ErrUnmapped) {
		t.Errorf("unmapped classification: %v", err)
	}
}
