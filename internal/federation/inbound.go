package federation

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"liaison/internal/federation/linkproto"
	"liaison/internal/message"
)

// inbound keeps the partially received messages from one peer, across
// sessions, so that an interrupted transfer resumes where it stopped. With
// a spool directory the partials are files and survive a receiver restart;
// without one they live in memory and a restart makes the sender start
// over. Either way this costs bytes, never correctness: custody is
// acknowledged only after Inbox.AcceptBatch, and a reassembled message whose
// hash does not match the sender's tag is discarded and sent again.
type inbound struct {
	max      int
	maxBytes uint64 // bound on the totals of partials held in memory
	dir      string // "" keeps partials in memory

	mu    sync.Mutex // guards below
	parts map[message.ID]*partial
	clock uint64 // for least-recently-used eviction
	bytes uint64 // totals of the in-memory partials
}

type partial struct {
	tag   linkproto.Tag
	total uint64
	buf   []byte   // in memory, or
	f     *os.File // spooled
	size  uint64   // bytes held
	used  uint64
}

func newInbound(max int, maxBytes uint64) *inbound {
	return &inbound{max: max, maxBytes: maxBytes, parts: map[message.ID]*partial{}}
}

// openInbound returns an inbound spooling to dir, loading the partials a
// previous process left there.
func openInbound(max int, dir string) (*inbound, error) {
	in := newInbound(max, 0)
	in.dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, e := range ents {
		id, tag, total, ok := parseSpoolName(e.Name())
		path := filepath.Join(dir, e.Name())
		if !ok || len(in.parts) >= max {
			os.Remove(path)
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil || uint64(st.Size()) >= total {
			f.Close()
			os.Remove(path)
			continue
		}
		in.parts[id] = &partial{tag: tag, total: total, f: f, size: uint64(st.Size())}
	}
	return in, nil
}

func spoolName(id message.ID, tag linkproto.Tag, total uint64) string {
	return hex.EncodeToString(id[:]) + "-" + hex.EncodeToString(tag[:]) + "-" + strconv.FormatUint(total, 10) + ".part"
}

func parseSpoolName(name string) (id message.ID, tag linkproto.Tag, total uint64, ok bool) {
	parts := strings.Split(strings.TrimSuffix(name, ".part"), "-")
	if len(parts) != 3 || !strings.HasSuffix(name, ".part") {
		return id, tag, 0, false
	}
	a, err1 := hex.DecodeString(parts[0])
	b, err2 := hex.DecodeString(parts[1])
	total, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(a) != 16 || len(b) != 8 || total == 0 || total > linkproto.MaxMessage {
		return id, tag, 0, false
	}
	copy(id[:], a)
	copy(tag[:], b)
	return id, tag, total, true
}

// close releases spool files (keeping them for the next process).
func (in *inbound) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, p := range in.parts {
		if p.f != nil {
			p.f.Close()
		}
	}
}

// forget removes a partial; in.mu is held.
func (in *inbound) forget(id message.ID) {
	p := in.parts[id]
	if p == nil {
		return
	}
	delete(in.parts, id)
	if p.f == nil {
		in.bytes -= p.total
	}
	if p.f != nil {
		p.f.Close()
		os.Remove(p.f.Name())
	}
}

func (in *inbound) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.parts)
}

// resume lists what a new session's HELLO reports.
func (in *inbound) resume() []linkproto.Resume {
	in.mu.Lock()
	defer in.mu.Unlock()
	var rs []linkproto.Resume
	for id, p := range in.parts {
		if len(rs) == linkproto.MaxResume {
			break
		}
		rs = append(rs, linkproto.Resume{ID: id, Tag: p.tag, Offset: p.size})
	}
	return rs
}

// add stores one fragment. It returns the whole message when d completes
// it; otherwise the offset the receiver now holds, and rewind=true when the
// sender must resend from that offset (a gap or a different wire version).
func (in *inbound) add(d *linkproto.Data) (whole []byte, have uint64, rewind bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.clock++
	p := in.parts[d.ID]
	if p != nil && (p.tag != d.Tag || p.total != d.Total) {
		in.forget(d.ID)
		p = nil
	}
	if p == nil {
		if d.Offset != 0 {
			return nil, 0, true
		}
		if uint64(len(d.Chunk)) == d.Total { // single fragment: no partial state
			return append([]byte(nil), d.Chunk...), d.Total, false
		}
		in.evict(d.Total)
		p = &partial{tag: d.Tag, total: d.Total}
		if in.dir != "" {
			f, err := os.OpenFile(filepath.Join(in.dir, spoolName(d.ID, d.Tag, d.Total)), os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
			if err != nil {
				return nil, 0, true
			}
			p.f = f
		} else {
			p.buf = make([]byte, 0, min(d.Total, 1<<20))
			in.bytes += d.Total
		}
		in.parts[d.ID] = p
	}
	p.used = in.clock
	end := d.Offset + uint64(len(d.Chunk))
	switch {
	case d.Offset > p.size:
		return nil, p.size, true
	case end <= p.size: // a repeat
	default:
		tail := d.Chunk[p.size-d.Offset:]
		if p.f != nil {
			if _, err := p.f.Write(tail); err != nil {
				in.forget(d.ID)
				return nil, 0, true
			}
		} else {
			p.buf = append(p.buf, tail...)
		}
		p.size += uint64(len(tail))
	}
	if p.size < p.total {
		return nil, p.size, false
	}
	whole = p.buf
	if p.f != nil {
		b, err := os.ReadFile(p.f.Name())
		if err != nil {
			in.forget(d.ID)
			return nil, 0, true
		}
		whole = b
	}
	in.forget(d.ID)
	if linkproto.TagOf(whole) != d.Tag {
		return nil, 0, true // corrupted partial (e.g. torn spool file): start again
	}
	return whole, p.total, false
}

// drop forgets a partial (after its message could not be used).
func (in *inbound) drop(id message.ID) {
	in.mu.Lock()
	in.forget(id)
	in.mu.Unlock()
}

// evict makes room for one more partial of total bytes; in.mu is held.
func (in *inbound) evict(total uint64) {
	for len(in.parts) > 0 && (len(in.parts) >= in.max || (in.dir == "" && in.bytes+total > in.maxBytes)) {
		var old message.ID
		var oldest uint64 = ^uint64(0)
		for id, p := range in.parts {
			if p.used < oldest {
				old, oldest = id, p.used
			}
		}
		in.forget(old)
	}
}
