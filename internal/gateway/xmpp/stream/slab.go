package stream

// A slab hands out pieces of arrays allocated for one stanza, so that a
// stanza's elements, attribute lists and child lists cost a few
// allocations rather than one each. A new stanza starts new arrays, sized
// from the stanza before, so that stanzas share no memory: a caller
// keeping one stanza keeps nothing of the next alive.
type slab[T any] struct {
	free []T
	used int // taken in this stanza
	hint int // taken in the stanza before, within [minSlab, maxSlab]
}

const (
	minSlab = 4
	maxSlab = 64
)

// take returns n zero values with no room to append over their neighbours.
func (s *slab[T]) take(n int) []T {
	if len(s.free) < n {
		s.free = make([]T, max(n, s.hint, minSlab))
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	s.used += n
	return out
}

// one returns a pointer to one zero value.
func (s *slab[T]) one() *T { return &s.take(1)[0] }

// reset ends a stanza.
func (s *slab[T]) reset() {
	s.hint = min(max(s.used, minSlab), maxSlab)
	s.free, s.used = nil, 0
}
