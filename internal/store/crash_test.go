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

	"liaison/internal/message"
)

const crashEnv = "LIAISON_STORE_CRASH_DB"

// TestCrashChild is the child half of TestSQLiteCrash: it accepts messages
// from several goroutines until killed and prints "ACK <id>" once Accept has
// returned, i.e. after the commit.
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
	wg.Wait()
}

// TestSQLiteCrash kills a process that is accepting messages and checks
// that every message it reported as accepted is in the store exactly once.
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
	var acked []message.ID
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("child: %s", line)
		}
		rest, ok := strings.CutPrefix(line, "ACK ")
		if !ok {
			continue
		}
		id, err := message.ParseID(rest)
		if err != nil {
			t.Fatalf("child printed %q: %v", line, err)
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
	if _, dup, err := s.Accept(ctx, &message.Message{ID: acked[0]}, nil); err != nil || !dup {
		t.Fatalf("re-Accept of an acknowledged id after crash: dup=%v err=%v", dup, err)
	}
	t.Logf("%d acknowledged, %d in store after SIGKILL", len(acked), len(count))
}
