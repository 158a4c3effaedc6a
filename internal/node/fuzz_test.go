package node_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"liaison/internal/api"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

// FuzzNodePostMessage posts arbitrary JSON to a real node's API (guard,
// policies, store and audit behind it). No input may panic or earn a 5xx,
// and an accepted message must be readable back. Each run is a durable
// write, so minimising a new input takes long: fuzz with
// -fuzzminimizetime 1x.
func FuzzNodePostMessage(f *testing.F) {
	usa, pak := nodetest.NewHome(f, "USA", nodetest.Config{}), nodetest.NewHome(f, "PAK", nodetest.Config{})
	n := nodetest.Start(f, usa, node.Options{})
	nodetest.Install(f, n, nodetest.Agreement(f, time.Now(), usa, pak))
	seed := func(channel, prec, lbl, body string) {
		b, _ := json.Marshal(api.PostMessage{Channel: channel, Precedence: prec, Label: lbl, Body: &body})
		f.Add(b)
	}
	rel := string(nodetest.Label(f, "USA", "CONFIDENTIAL", "USA", "PAK"))
	seed("exercise", "FLASH", rel, "hello")
	seed("exercise", "R", rel, "phase line KESTREL")
	seed("sitrep", "PRIORITY", string(nodetest.Label(f, "USA", "SECRET", "USA", "PAK")), "above the exercise ceiling, not sitrep's")
	seed("exercise", "IMMEDIATE", string(nodetest.Label(f, "USA", "TOP SECRET", "USA", "PAK")), "above ceiling")
	seed("exercise", "ROUTINE", string(nodetest.Label(f, "USA", "CONFIDENTIAL")), "noforn")
	seed("gossip", "ROUTINE", rel, "no agreement")
	seed("exercise", "ROUTINE", strings.Replace(rel, "CONFIDENTIAL", "CONF<", 1), "broken label")
	seed("exercise", "ROUTINE", `<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`, "dtd")
	f.Add([]byte(`{"channel":"exercise","precedence":"FLASH","label":"` + strings.ReplaceAll(rel, `"`, `\"`) + `","body_base64":"AAEC","content_type":"application/octet-stream"}`))
	h := n.Handler()
	token := "Bearer " + usa.Tokens["officer"]
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(string(body)))
		req.Header.Set("Authorization", token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("POST %q: %d %s", body, w.Code, w.Body)
		}
		if w.Code != http.StatusCreated && w.Code != http.StatusOK {
			return
		}
		var rc api.Receipt
		if err := json.Unmarshal(w.Body.Bytes(), &rc); err != nil {
			t.Fatalf("receipt %s: %v", w.Body, err)
		}
		get := httptest.NewRequest("GET", "/v1/messages/"+rc.ID.String(), nil)
		get.Header.Set("Authorization", token)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, get)
		if w.Code != http.StatusOK {
			t.Fatalf("accepted %s, then GET: %d %s", rc.ID, w.Code, w.Body)
		}
	})
}
