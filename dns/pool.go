package dns

import (
	"math"
	"net/netip"
)

// edge is one edge node as the state sees it.
type edge struct {
	name, cloud string
	addr        netip.Addr
	place       place
	weight      int
	eligible    bool // live, healthy and weight > 0
}

// pool is a set of addresses handed out together: the live edges of one
// cloud, or of every cloud. Records are packed once; a query picks a start
// from seq (weights spread the first answer) and takes n records from there.
type pool struct {
	label string   // the cloud, "all" or "fail-open": the metric label
	edges []*edge  // in recs order, for explanations
	recs  [][]byte // type..rdata of each record (owner written per answer)
	seq   []uint16 // start positions, each edge as often as its weight
	n     int      // records per answer
	loc   int      // metric index of label
}

func newPool(label string, edges []*edge, typ uint16, ttl uint32, maxAnswers int, equal bool) *pool {
	p := &pool{label: label, edges: edges, n: min(maxAnswers, len(edges))}
	w := make([]int, len(edges))
	for i, e := range edges {
		var rdata []byte
		if typ == typeA {
			b := e.addr.As4()
			rdata = b[:]
		} else {
			b := e.addr.As16()
			rdata = b[:]
		}
		p.recs = append(p.recs, rrTail(typ, ttl, rdata))
		w[i] = e.weight
		if equal || w[i] <= 0 {
			w[i] = 1
		}
	}
	p.seq = smoothSequence(w)
	return p
}

// smoothSequence is nginx's smooth weighted round robin laid out once: each
// index appears in proportion to its weight, spread out rather than bunched.
func smoothSequence(w []int) []uint16 {
	g := 0
	for _, x := range w {
		g = gcd(g, x)
	}
	total := 0
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	if total > 1024 { // keep the table small; the ratio survives roughly
		f := 1024 / float64(total)
		total = 0
		for i := range w {
			w[i] = max(1, int(math.Round(float64(w[i])*f)))
			total += w[i]
		}
	}
	cur := make([]int, len(w))
	seq := make([]uint16, 0, total)
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, uint16(best))
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// appendAnswers writes the pool's records for one answer, owned by the name
// at ptr, starting at the position picked by turn.
func (p *pool) appendAnswers(b []byte, ptr int, turn uint32) []byte {
	start := int(p.seq[turn%uint32(len(p.seq))])
	for j := 0; j < p.n; j++ {
		i := start + j
		if i >= len(p.recs) {
			i -= len(p.recs)
		}
		b = appendRR(b, ptr, p.recs[i])
	}
	return b
}

// answerLen is the size appendAnswers adds.
func (p *pool) answerLen() int {
	if p.n == 0 {
		return 0
	}
	return p.n * (2 + len(p.recs[0]))
}
