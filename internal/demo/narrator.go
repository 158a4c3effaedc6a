package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// narrator prints the story: a heading per step, what happens, and each
// check with its outcome. In JSON mode it prints one object per line
// instead, for machines.
type narrator struct {
	w     io.Writer
	json  bool
	color bool // ANSI colours, for a terminal
	start time.Time

	mu    sync.Mutex // guards step and fails
	step  string
	fails []string
}

type event struct {
	Kind    string     `json:"kind"` // step, say, check, table, done
	Step    string     `json:"step,omitempty"`
	Text    string     `json:"text,omitempty"`
	OK      *bool      `json:"ok,omitempty"`
	Columns []string   `json:"columns,omitempty"`
	Rows    [][]string `json:"rows,omitempty"`
	Elapsed float64    `json:"elapsed_s"`
}

func (n *narrator) emit(e event) {
	e.Elapsed = time.Since(n.start).Seconds()
	b, _ := json.Marshal(e)
	fmt.Fprintf(n.w, "%s\n", b)
}

// Step starts a numbered step of the story.
func (n *narrator) Step(title string) {
	n.mu.Lock()
	n.step = title
	n.mu.Unlock()
	if n.json {
		n.emit(event{Kind: "step", Step: title})
		return
	}
	fmt.Fprintf(n.w, "\n%s\n%s\n", n.paint("1", title), strings.Repeat("─", min(len([]rune(title)), 78)))
}

// Say narrates what happens.
func (n *narrator) Say(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if n.json {
		n.emit(event{Kind: "say", Step: n.current(), Text: text})
		return
	}
	fmt.Fprintf(n.w, "  %s\n", text)
}

// Check records whether the story behaved as told.
func (n *narrator) Check(ok bool, format string, args ...any) bool {
	text := fmt.Sprintf(format, args...)
	if !ok {
		n.mu.Lock()
		n.fails = append(n.fails, n.step+": "+text)
		n.mu.Unlock()
	}
	if n.json {
		n.emit(event{Kind: "check", Step: n.current(), Text: text, OK: &ok})
		return ok
	}
	mark := n.paint("32", "✓")
	if !ok {
		mark = n.paint("31", "✗")
	}
	fmt.Fprintf(n.w, "  %s %s\n", mark, text)
	return ok
}

// Table prints rows under columns.
func (n *narrator) Table(columns []string, rows [][]string) {
	if n.json {
		n.emit(event{Kind: "table", Step: n.current(), Columns: columns, Rows: rows})
		return
	}
	width := make([]int, len(columns))
	for i, c := range columns {
		width[i] = len([]rune(c))
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], len([]rune(c)))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range cells {
			if i >= len(width) {
				break
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(c))+2))
			}
		}
		fmt.Fprintln(n.w, b.String())
	}
	line(columns)
	for _, r := range rows {
		line(r)
	}
}

func (n *narrator) current() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.step
}

// Failures lists the checks that failed, each prefixed by its step.
func (n *narrator) Failures() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.fails...)
}

// Done prints the closing line.
func (n *narrator) Done() {
	fails := n.Failures()
	if n.json {
		ok := len(fails) == 0
		n.emit(event{Kind: "done", OK: &ok, Text: strings.Join(fails, "; ")})
		return
	}
	if len(fails) == 0 {
		fmt.Fprintf(n.w, "\n%s (%.1fs).\n", n.paint("32", "Every step behaved as told"), time.Since(n.start).Seconds())
		return
	}
	fmt.Fprintf(n.w, "\n%s\n", n.paint("31", fmt.Sprintf("%d check(s) failed:", len(fails))))
	for _, f := range fails {
		fmt.Fprintf(n.w, "  - %s\n", f)
	}
}

// paint wraps s in an ANSI SGR code when writing to a terminal.
func (n *narrator) paint(code, s string) string {
	if !n.color {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}
