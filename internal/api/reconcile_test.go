package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	. "liaison/internal/api"
	"liaison/internal/api/apitest"
)

// reconcilingFake adds audit reconciliation to the fake backend.
type reconcilingFake struct {
	*apitest.Fake
	asked string
}

func (f *reconcilingFake) ReconcileAudit(ctx context.Context, peer string) (*AuditDiff, error) {
	f.asked = peer
	if peer != "XBB" {
		return nil, Errorf(http.StatusNotFound, "not-partner", "%q is not a partner", peer)
	}
	return &AuditDiff{Peer: peer, Matched: 2, OnlyMine: []AuditEntry{{Index: 7, Kind: "delivered", MessageID: "m1", Digest: "sha256:00"}}}, nil
}

func TestReconcileRoute(t *testing.T) {
	ts, _ := newTestServer(t) // the plain fake cannot reconcile
	if code, v := do(t, ts, "GET", "/v1/audit/reconcile?peer=XBB", operatorToken, ""); code != http.StatusNotImplemented {
		t.Errorf("plain fake: %d %v", code, v)
	}

	rf := &reconcilingFake{Fake: apitest.NewFake("XAA")}
	s, err := New(Config{Backend: rf, Tokens: []Token{
		{Name: "alice", SHA256: HashToken(senderToken), Roles: []Role{RoleSender}},
		{Name: "aud", SHA256: HashToken("auditor-secret"), Roles: []Role{RoleAuditor}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ts = httptest.NewServer(s)
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/audit/reconcile?peer=XBB", "auditor-secret", http.StatusOK},
		{"/v1/audit/reconcile?peer=XBB", senderToken, http.StatusForbidden},
		{"/v1/audit/reconcile?peer=XBB", "", http.StatusUnauthorized},
		{"/v1/audit/reconcile", "auditor-secret", http.StatusBadRequest},
		{"/v1/audit/reconcile?peer=XZZ", "auditor-secret", http.StatusNotFound},
	} {
		code, v := do(t, ts, "GET", tc.path, tc.token, "")
		if code != tc.want {
			t.Errorf("GET %s as %q = %d %v, want %d", tc.path, tc.token, code, v, tc.want)
			continue
		}
		if code == http.StatusOK {
			mine, _ := v["only_mine"].([]any)
			if v["peer"] != "XBB" || v["matched"] != float64(2) || len(mine) != 1 || mine[0].(map[string]any)["digest"] != "sha256:00" {
				t.Errorf("answer %v", v)
			}
		}
	}
}
