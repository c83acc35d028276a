package dns

import (
	"math/bits"
	"net/netip"
	"slices"
)

// u128 is an address as a number: IPv4 in lo (hi 0), IPv6 in both halves.
// Range tables are searched on it so a lookup is a binary search over a flat
// slice, with no allocation and no string built per query.
type u128 struct{ hi, lo uint64 }

var max32 = u128{0, 1<<32 - 1}
var max128 = u128{^uint64(0), ^uint64(0)}

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) inc() u128 {
	lo, c := bits.Add64(a.lo, 1, 0)
	return u128{a.hi + c, lo}
}

func (a u128) dec() u128 {
	lo, b := bits.Sub64(a.lo, 1, 0)
	return u128{a.hi - b, lo}
}

// lowMask has the low k bits set.
func lowMask(k int) u128 {
	switch {
	case k <= 0:
		return u128{}
	case k < 64:
		return u128{0, 1<<uint(k) - 1}
	case k < 128:
		return u128{1<<uint(k-64) - 1, ^uint64(0)}
	}
	return max128
}

func (a u128) andNot(m u128) u128 { return u128{a.hi &^ m.hi, a.lo &^ m.lo} }
func (a u128) or(m u128) u128     { return u128{a.hi | m.hi, a.lo | m.lo} }

// key turns an address into its table key and says which table (v4 or v6).
func key(a netip.Addr) (u128, bool) {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}, true
	}
	b := a.As16()
	var k u128
	for i := 0; i < 8; i++ {
		k.hi = k.hi<<8 | uint64(b[i])
		k.lo = k.lo<<8 | uint64(b[8+i])
	}
	return k, false
}

// prefixRange is the first and last key of a prefix.
func prefixRange(p netip.Prefix) (start, end u128, v4 bool) {
	p = p.Masked()
	start, v4 = key(p.Addr())
	width := 128
	if v4 {
		width = 32
	}
	return start, start.or(lowMask(width - p.Bits())), v4
}

// span maps a key range to a location. configured marks ranges from the
// site's dns.networks, whose ECS addresses are trusted even when private.
type span struct {
	start, end u128
	loc        int32
	configured bool
}

// rangeTable is sorted, non-overlapping spans; gaps are unknown locations.
type rangeTable struct {
	spans []span
	width int // 32 or 128
	max   u128
}

func newTable(width int, spans []span) rangeTable {
	t := rangeTable{width: width, max: max32}
	if width == 128 {
		t.max = max128
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start.less(b.start) {
			return -1
		}
		if b.start.less(a.start) {
			return 1
		}
		return 0
	})
	// Merge neighbours that say the same thing: fewer spans, and a wider
	// ECS scope for the answer.
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 {
			p := &out[n-1]
			if !p.end.less(s.start) { // overlap in the source: the earlier one wins
				if p.end.less(s.end) {
					s.start = p.end.inc()
				} else {
					continue
				}
			}
			if p.loc == s.loc && p.configured == s.configured && p.end.inc() == s.start {
				p.end = s.end
				continue
			}
		}
		out = append(out, s)
	}
	t.spans = slices.Clip(out)
	return t
}

// lookup finds the location of k and the prefix length over which that
// answer holds (the ECS scope): the widest aligned block around k that
// stays inside one span (or one gap).
func (t *rangeTable) lookup(k u128) (loc int32, configured bool, scope uint8) {
	// index of the last span whose start <= k
	lo, hi := 0, len(t.spans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.less(t.spans[m].start) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	i := lo - 1
	var first, last u128
	switch {
	case i >= 0 && !t.spans[i].end.less(k):
		s := &t.spans[i]
		loc, configured, first, last = s.loc, s.configured, s.start, s.end
	default: // a gap between spans i and i+1
		loc, first, last = -1, u128{}, t.max
		if i >= 0 {
			first = t.spans[i].end.inc()
		}
		if i+1 < len(t.spans) {
			last = t.spans[i+1].start.dec()
		}
	}
	return loc, configured, uint8(t.width - fitBlock(k, first, last, t.width))
}

// fitBlock is the largest b such that the aligned 2^b block holding k lies
// within [first, last].
func fitBlock(k, first, last u128, width int) int {
	lo, hi := 0, width // lo always fits (the block {k})
	for lo < hi {
		m := (lo + hi + 1) / 2
		mask := lowMask(m)
		base := k.andNot(mask)
		if !base.less(first) && !last.less(base.or(mask)) {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

// overlay lays top over base (both sorted and non-overlapping): where they
// overlap, top wins.
func overlay(base, top []span) []span {
	out := make([]span, 0, len(base)+2*len(top))
	j := 0
	for _, b := range base {
		for j < len(top) && top[j].end.less(b.start) {
			j++
		}
		cur, done := b.start, false
		for k := j; k < len(top) && !b.end.less(top[k].start); k++ {
			if cur.less(top[k].start) {
				out = append(out, span{cur, top[k].start.dec(), b.loc, b.configured})
			}
			if !top[k].end.less(b.end) {
				done = true
				break
			}
			if cur.less(top[k].end.inc()) {
				cur = top[k].end.inc()
			}
		}
		if !done {
			out = append(out, span{cur, b.end, b.loc, b.configured})
		}
	}
	return append(out, top...)
}
