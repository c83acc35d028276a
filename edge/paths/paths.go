// Package paths is the edge's pure path-choice logic: smoothed path
// measurements, the choice of the best path with hysteresis, and the
// rendezvous hash that gives every object one owner among a set of edges.
// It does no I/O and reads no clock: callers pass the time in.
package paths

import (
	"math"
	"time"
)

// Stats are one path's smoothed measurements (EWMA).
type Stats struct {
	// TTFB is the time to the response's first byte (headers), smoothed;
	// on a fresh connection it includes the connection's RTT.
	TTFB time.Duration `json:"ttfb"`
	// RTT is the kernel's smoothed round-trip time of the connections
	// the fetches used (0: unknown); shown, not scored: TTFB contains it.
	RTT time.Duration `json:"rtt"`
	// Throughput in bytes/s of bodies large enough to tell (0: unknown).
	Throughput float64 `json:"throughput"`
	// Loss is the smoothed share of packets lost: a fetch or probe that
	// failed (connection refused or reset, timeout, gateway error) counts
	// as 1, another as the share of its data segments retransmitted.
	Loss float64 `json:"loss"`
	// Fails counts the failures since the last success.
	Fails int `json:"fails,omitempty"`
	// Samples counts what was observed; Updated is the last observation.
	Samples int       `json:"samples"`
	Updated time.Time `json:"updated"`
}

// Sample is one observation of a path: a real fetch or a probe.
type Sample struct {
	Failed bool
	TTFB   time.Duration
	RTT    time.Duration // of the connection, when known
	// Lost is the share of the fetch's packets that were lost (sent
	// again), when known; a failed fetch counts as all lost.
	Lost float64
	// Bytes read in Duration, for throughput; bodies below MinThroughputBytes
	// say more about the round trip than about the path's bandwidth.
	Bytes    int64
	Duration time.Duration
}

const (
	// Alpha weighs a new latency sample: after 3 samples of a new level the
	// average has moved two thirds of the way.
	Alpha = 0.3
	// outlier: a latency sample counts for at most this many times the
	// average.
	outlier = 4
	// LossAlpha weighs loss: a memory of some 50 fetches, long enough
	// that a 2 % loss shows as about 2 %. A path that fails is told by
	// its consecutive failures (Stats.Fails), not by this average.
	LossAlpha = 0.02
	// MinThroughputBytes: smaller bodies do not measure throughput.
	MinThroughputBytes = 64 << 10
	// refBytes is the object size a path's score prices its throughput at.
	refBytes = 256 << 10
	// lossWeight: each 1 % of loss costs a path 10 % more latency, about
	// what one retransmission timeout in ten fetches costs on short paths.
	lossWeight = 10
)

// Observe folds s into st.
func (st *Stats) Observe(s Sample, now time.Time) {
	first := st.Samples == 0
	st.Samples++
	st.Updated = now
	fail := min(max(s.Lost, 0), 1)
	if s.Failed {
		fail = 1
	}
	if first {
		st.Loss = fail
	} else {
		st.Loss += LossAlpha * (fail - st.Loss)
	}
	if s.Failed {
		st.Fails++
		return
	}
	st.Fails = 0
	switch {
	case s.TTFB <= 0:
		// A body's throughput, or a success that timed nothing.
	case st.TTFB == 0:
		st.TTFB = s.TTFB
	default:
		// One sample moves the average at most by a factor of 1+3*Alpha
		// up: a single stall on a busy host does not move traffic, while
		// a path that really slowed down gets there in a few samples.
		st.TTFB += time.Duration(Alpha * float64(min(s.TTFB, outlier*st.TTFB)-st.TTFB))
	}
	if s.RTT > 0 {
		if st.RTT == 0 {
			st.RTT = s.RTT
		} else {
			st.RTT += time.Duration(Alpha * float64(s.RTT-st.RTT))
		}
	}
	if s.Bytes >= MinThroughputBytes && s.Duration > 0 {
		bps := float64(s.Bytes) / s.Duration.Seconds()
		if st.Throughput == 0 {
			st.Throughput = bps
		} else {
			st.Throughput += Alpha * (bps - st.Throughput)
		}
	}
}

// Score is the expected cost of a fetch over the path in seconds (lower
// is better): time to first byte, inflated by loss, plus the time to
// move a reference object at the measured throughput. ok is false when
// the path has no usable measurement (no latency seen yet).
func (st Stats) Score() (float64, bool) {
	if st.Samples == 0 || st.TTFB == 0 {
		return 0, false
	}
	if st.Loss >= 1 || st.Fails >= failedRun {
		return math.Inf(1), true // failing now, whatever it measured before
	}
	s := st.TTFB.Seconds() * (1 + lossWeight*st.Loss)
	if st.Throughput > 0 {
		s += refBytes / st.Throughput
	}
	return s, true
}

// Candidate is one path with its measurements.
type Candidate struct {
	ID    string
	Stats Stats
}

// Policy tunes the choice.
type Policy struct {
	// Margin: another path must score this much better (0.2: 20 %) than
	// the current one to take over, so that two similar paths never flap.
	Margin float64
	// Hold is the least time on a path before moving again for a better
	// one (a failing path is left at once).
	Hold time.Duration
	// StaleAfter: measurements older than this are treated as missing.
	StaleAfter time.Duration
	// MinGain is the least absolute gain worth a move: below a few
	// milliseconds the difference is noise, and the preferred path stays.
	MinGain time.Duration
	// Confirm is how long a better path must stay better before traffic
	// moves to it: a stall of the host inflates the path in use (its
	// every fetch is a sample) more than the ones only probed, and must
	// not move traffic. Leaving a failing or vanished path is immediate.
	Confirm time.Duration
}

// Choice is the path in use and since when, and the path that looks
// better, since when (waiting for Policy.Confirm).
type Choice struct {
	ID           string    `json:"id"`
	Since        time.Time `json:"since"`
	Pending      string    `json:"pending,omitempty"`
	PendingSince time.Time `json:"pendingSince,omitzero"`
}

// failing is the loss above which, and failedRun the failures in a row
// after which, a path is left without waiting for Hold or Confirm.
const (
	failing   = 0.5
	failedRun = 3
)

func (st Stats) failing() bool { return st.Loss >= failing || st.Fails >= failedRun }

// Choose picks the path to use from cands (in preference order: on
// missing data, and between equal scores, the earlier one wins; the
// first is the preferred path, the direct one) given the current choice
// cur. The current path is kept unless another scores better by more
// than p.Margin and p.MinGain and cur was held for p.Hold, or the current
// path is failing, gone, or has no fresh data while another has. Away
// from the preferred path, it is taken back once it is no worse than the
// current one by p.Margin and p.MinGain: between the two thresholds
// nothing moves, so two paths within the margin of each other never flap.
func Choose(cands []Candidate, cur Choice, now time.Time, p Policy) Choice {
	if len(cands) == 0 {
		return Choice{}
	}
	score := func(c Candidate) (float64, bool) {
		if p.StaleAfter > 0 && now.Sub(c.Stats.Updated) > p.StaleAfter {
			return 0, false
		}
		return c.Stats.Score()
	}
	best, bestScore := -1, 0.0
	curIdx, curScore, curOK := -1, 0.0, false
	for i, c := range cands {
		s, ok := score(c)
		if c.ID == cur.ID {
			curIdx, curScore, curOK = i, s, ok
		}
		if ok && (best < 0 || s < bestScore) {
			best, bestScore = i, s
		}
	}
	move := func(i int) Choice {
		if cands[i].ID == cur.ID {
			return cur
		}
		return Choice{ID: cands[i].ID, Since: now}
	}
	settled := cur
	settled.Pending, settled.PendingSince = "", time.Time{}
	// propose moves to cands[i] once it stayed better for p.Confirm.
	propose := func(i int) Choice {
		id := cands[i].ID
		if cur.Pending != id {
			if p.Confirm <= 0 {
				return move(i)
			}
			c := settled
			c.Pending, c.PendingSince = id, now
			return c
		}
		if now.Sub(cur.PendingSince) >= p.Confirm {
			return move(i)
		}
		return cur
	}
	prefOK := func() bool {
		s, ok := score(cands[0])
		return ok && !cands[0].Stats.failing() && s <= curScore*(1+p.Margin)+p.MinGain.Seconds()
	}
	switch {
	case best < 0 && curIdx >= 0:
		return settled // nothing measured: stay
	case best < 0:
		return move(0)
	case curIdx < 0 || !curOK:
		return move(best)
	case best != curIdx && cands[curIdx].Stats.failing():
		return move(best)
	case now.Sub(cur.Since) < p.Hold:
		return settled
	case curIdx != 0 && prefOK():
		return propose(0)
	case best == curIdx || bestScore == curScore:
		return settled
	case bestScore < curScore*(1-p.Margin)-p.MinGain.Seconds():
		return propose(best)
	}
	return settled
}

// Rank orders nodes by their rendezvous weight for key (highest random
// weight hashing, as Varnish's shard director): every caller with the
// same set ranks them alike, and removing a node moves only the keys it
// owned, each to the node ranked next.
func Rank(key string, nodes []string) []string {
	type w struct {
		n string
		h uint64
	}
	ws := make([]w, len(nodes))
	kh := hash(key, 0)
	for i, n := range nodes {
		ws[i] = w{n, mix(hash(n, kh))}
	}
	// Few nodes: insertion sort, by weight then name.
	for i := 1; i < len(ws); i++ {
		for j := i; j > 0 && (ws[j].h > ws[j-1].h || ws[j].h == ws[j-1].h && ws[j].n < ws[j-1].n); j-- {
			ws[j], ws[j-1] = ws[j-1], ws[j]
		}
	}
	out := make([]string, len(ws))
	for i := range ws {
		out[i] = ws[i].n
	}
	return out
}

// hash is FNV-1a (64 bit) of s, continuing from seed when not 0; stable
// across processes and releases, as every edge must agree.
func hash(s string, seed uint64) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64) ^ seed
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime64
	}
	return h
}

// mix is splitmix64's finaliser: FNV's low bits alone are poorly spread.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
