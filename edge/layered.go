package edge

import (
	"iter"
	"maps"
	"math"
)

// layered is a map that a table shares with the revisions built from it.
// A revision that changes a few distributions of a large site lays a small
// layer of its changes over its parent's map instead of copying every
// host, so building it costs what changed, not the site. The layers fold
// into one map once they reach foldAt entries: a lookup stays at most two
// map reads, and the copy is paid once per many revisions (about √(2n)
// entries per revision, for n hosts, against n for a copy each time).
type layered[V any] struct {
	base map[string]V
	top  map[string]layerEntry[V]
	n    int
	// shared: base belongs to an earlier revision too; writes go to top.
	shared bool
}

type layerEntry[V any] struct {
	v    V
	gone bool
}

func newLayered[V any]() layered[V] { return layered[V]{base: map[string]V{}} }

func foldAt(n int) int { return max(64, int(math.Sqrt(2*float64(n)))) }

// next is a copy for the next revision to change; m stays as it is.
func (m *layered[V]) next() layered[V] {
	if len(m.top) >= foldAt(m.n) {
		flat := make(map[string]V, m.n)
		for k, v := range m.all() {
			flat[k] = v
		}
		return layered[V]{base: flat, n: m.n}
	}
	top := maps.Clone(m.top)
	if top == nil {
		top = map[string]layerEntry[V]{}
	}
	return layered[V]{base: m.base, top: top, n: m.n, shared: true}
}

func (m *layered[V]) get(k string) (V, bool) {
	if len(m.top) > 0 {
		if e, ok := m.top[k]; ok {
			return e.v, !e.gone
		}
	}
	v, ok := m.base[k]
	return v, ok
}

func (m *layered[V]) set(k string, v V) {
	if _, ok := m.get(k); !ok {
		m.n++
	}
	if m.shared {
		m.top[k] = layerEntry[V]{v: v}
		return
	}
	m.base[k] = v
}

func (m *layered[V]) del(k string) {
	if _, ok := m.get(k); !ok {
		return
	}
	m.n--
	if m.shared {
		m.top[k] = layerEntry[V]{gone: true}
		return
	}
	delete(m.base, k)
}

func (m *layered[V]) len() int { return m.n }

func (m *layered[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for k, e := range m.top {
			if !e.gone && !yield(k, e.v) {
				return
			}
		}
		for k, v := range m.base {
			if _, over := m.top[k]; over {
				continue
			}
			if !yield(k, v) {
				return
			}
		}
	}
}
