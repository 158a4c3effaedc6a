package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"liaison/internal/message"
)

const crashEnv = "LIAISON_STORE_CRASH_DB"

// TestCrashChild is the child half of TestSQLiteCrash: it accepts messages
// from several goroutines until killed and prints "ACK <id>" once Accept has
// returned, i.e. after the commit. Two more goroutines lease what is queued
// and acknowledge it, relaxed writes (see relaxed) committed among the
// accepts' durable ones, and print "DELIVERED <id>" once Ack has returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child of TestSQLiteCrash only")
	}
	s, err := OpenSQLite(context.Background(), path, Config{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				m := newMsg("crash", message.Priority)
				if _, _, err := s.Accept(context.Background(), m, queued("XBB")); err != nil {
					fmt.Println("ERR", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(os.Stdout, "ACK", m.ID)
				mu.Unlock()
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for {
				ls, err := s.Lease(context.Background(), "XBB", 16, time.Minute)
				if err == nil && len(ls) > 0 {
					ids := make([]message.ID, len(ls))
					for i, l := range ls {
						ids[i] = l.ID
					}
					err = s.Ack(context.Background(), "XBB", ids...)
					mu.Lock()
					for _, id := range ids {
						fmt.Fprintln(os.Stdout, "DELIVERED", id)
					}
					mu.Unlock()
				}
				if err != nil {
					fmt.Println("ERR", err)
					os.Exit(2)
				}
			}
		})
	}
	wg.Wait()
}

// TestSQLiteCrash kills a process that is accepting messages and checks
// that every message it reported as accepted is in the store exactly once,
// and every one it reported delivered stays so: a process crash loses no
// relaxed write either.
func TestSQLiteCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked, delivered []message.ID
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child: %s", line)
		}
		kind, rest, _ := strings.Cut(line, " ")
		if kind != "ACK" && kind != "DELIVERED" {
			continue
		}
		id, err := message.ParseID(rest)
		if err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		if kind == "DELIVERED" {
			delivered = append(delivered, id)
			continue
		}
		acked = append(acked, id)
		if len(acked) == 500 && !killed {
			// Everything still in the pipe was printed after its commit.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks without being killed", len(acked))
	}
	s := openSQLiteT(t, path, nil)
	ctx := context.Background()
	count := make(map[message.ID]int)
	var after uint64
	for {
		page, err := s.History(ctx, "crash", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			count[e.Msg.ID]++
		}
		after = page[len(page)-1].Seq
	}
	for _, id := range acked {
		if count[id] != 1 {
			t.Fatalf("acknowledged message %s present %d times after crash", id, count[id])
		}
	}
	if len(delivered) == 0 {
		t.Fatal("the child delivered nothing before it was killed")
	}
	for _, id := range delivered {
		if got := state(t, s, id, "XBB"); got != Delivered {
			t.Fatalf("message %s, reported delivered before the crash, is %q after it", id, got)
		}
	}
	if _, dup, err := s.Accept(ctx, &message.Message{ID: acked[0]}, nil); err != nil || !dup {
		t.Fatalf("re-Accept of an acknowledged id after crash: dup=%v err=%v", dup, err)
	}
	var check string
	if err := s.rdb.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("quick_check after the crash: %q, %v", check, err)
	}
	t.Logf("%d acknowledged, %d delivered, %d in store after SIGKILL", len(acked), len(delivered), len(count))
}
