package memcore

import (
	"context"
	"testing"
	"time"

	"liaison/internal/message"
)

func msg(ch string) *message.Message {
	return &message.Message{
		ID: message.NewID(), Channel: ch, Origin: "XAA", Precedence: message.Routine,
		Created: time.Now(), Label: []byte("<l/>"), ContentType: "application/cot+xml", Body: []byte("<event/>"),
	}
}

func TestDeliversToSubscribers(t *testing.T) {
	c := &Core{Buffer: 1}
	ctx := context.Background()
	a, _ := c.Subscribe(ctx, "sa", 0)
	other, _ := c.Subscribe(ctx, "chat", 0)
	m := msg("sa")
	if err := c.Submit(ctx, m); err != nil {
		t.Fatal(err)
	}
	d := <-a
	if d.Seq != 1 || d.Msg != m || string(d.LocalLabel) != "<l/>" {
		t.Errorf("delivery %+v", d)
	}
	if len(other) != 0 {
		t.Error("delivered on another channel")
	}
	if err := c.Submit(ctx, &message.Message{Channel: "sa"}); err == nil {
		t.Error("invalid message accepted")
	}
}

// A full subscriber blocks Submit until the context ends: no silent loss.
func TestBackpressure(t *testing.T) {
	c := &Core{Buffer: 1}
	ctx, cancel := context.WithCancel(context.Background())
	c.Subscribe(ctx, "sa", 0)
	if err := c.Submit(ctx, msg("sa")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- c.Submit(ctx, msg("sa")) }()
	select {
	case err := <-done:
		t.Fatalf("Submit returned %v with a full subscriber", err)
	default:
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Submit to a full subscriber succeeded after cancel")
	}
}
