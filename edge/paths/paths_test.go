package paths

import (
	"fmt"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := Policy{Margin: 0.2, Hold: 3 * time.Second, StaleAfter: 30 * time.Second, MinGain: 2 * time.Millisecond}
	m := func(ttfb time.Duration, loss float64, age time.Duration) Stats {
		return Stats{TTFB: ttfb, Loss: loss, Samples: 5, Updated: now.Add(-age)}
	}
	none := Stats{}
	old := now.Add(-time.Minute)
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		cands []Candidate
		cur   Choice
		want  string
		moved bool
	}{
		{"no candidates", nil, Choice{}, "", false},
		{"nothing measured, no choice: the first", []Candidate{{"direct", none}, {"parent:a", none}}, Choice{}, "direct", true},
		{"nothing measured: stay", []Candidate{{"direct", none}, {"parent:a", none}}, Choice{ID: "parent:a", Since: old}, "parent:a", false},
		{"first choice: the best measured", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:a", m(20*ms, 0, 0)}}, Choice{}, "parent:a", true},
		{"missing data loses to measured", []Candidate{{"direct", none}, {"parent:a", m(80*ms, 0, 0)}}, Choice{}, "parent:a", true},
		{"current unmeasured, another measured: move", []Candidate{{"direct", none}, {"parent:a", m(80*ms, 0, 0)}}, Choice{ID: "direct", Since: old}, "parent:a", true},
		{"exact tie on a parent: the preferred path", []Candidate{{"direct", m(20*ms, 0, 0)}, {"parent:a", m(20*ms, 0, 0)}}, Choice{ID: "parent:a", Since: old}, "direct", true},
		{"exact tie of two parents: keep current", []Candidate{{"direct", m(90*ms, 0, 0)}, {"parent:a", m(20*ms, 0, 0)}, {"parent:b", m(20*ms, 0, 0)}}, Choice{ID: "parent:b", Since: old}, "parent:b", false},
		{"exact tie, no current: the earlier", []Candidate{{"direct", m(20*ms, 0, 0)}, {"parent:a", m(20*ms, 0, 0)}}, Choice{}, "direct", true},
		{"within 10 %: no flap", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(91*ms, 0, 0)}}, Choice{ID: "direct", Since: old}, "direct", false},
		{"within 10 % on the parent: back to the preferred path", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(91*ms, 0, 0)}}, Choice{ID: "parent:a", Since: old}, "direct", true},
		{"preferred path still worse beyond the margin: stay", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(80*ms, 0, 0)}}, Choice{ID: "parent:a", Since: old}, "parent:a", false},
		{"preferred path back, but held too briefly", []Candidate{{"direct", m(10*ms, 0, 0)}, {"parent:a", m(10*ms, 0, 0)}}, Choice{ID: "parent:a", Since: now}, "parent:a", false},
		{"between two parents: plain hysteresis", []Candidate{{"direct", m(200*ms, 0, 0)}, {"parent:a", m(100*ms, 0, 0)}, {"parent:b", m(85*ms, 0, 0)}}, Choice{ID: "parent:a", Since: old}, "parent:a", false},
		{"sub-millisecond noise is no gain", []Candidate{{"direct", m(1200*time.Microsecond, 0, 0)}, {"parent:a", m(800*time.Microsecond, 0, 0)}}, Choice{ID: "direct", Since: old}, "direct", false},
		{"within the margin: no flap", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(81*ms, 0, 0)}}, Choice{ID: "direct", Since: old}, "direct", false},
		{"better beyond the margin: move", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(77*ms, 0, 0)}}, Choice{ID: "direct", Since: old}, "parent:a", true},
		{"better but held too briefly: stay", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(10*ms, 0, 0)}}, Choice{ID: "direct", Since: now.Add(-time.Second)}, "direct", false},
		{"three failures in a row: left at once", []Candidate{{"direct", Stats{TTFB: 10 * ms, Loss: 0.06, Fails: 3, Samples: 50, Updated: now}}, {"parent:a", m(40*ms, 0, 0)}}, Choice{ID: "direct", Since: now}, "parent:a", true},
		{"failing current left at once", []Candidate{{"direct", m(10*ms, 0.6, 0)}, {"parent:a", m(40*ms, 0, 0)}}, Choice{ID: "direct", Since: now}, "parent:a", true},
		{"loss counts against a path", []Candidate{{"direct", m(20*ms, 0.1, 0)}, {"parent:a", m(25*ms, 0, 0)}}, Choice{ID: "direct", Since: old}, "parent:a", true},
		{"all failed: stay", []Candidate{{"direct", Stats{Loss: 1, Samples: 3, Updated: now}}, {"parent:a", Stats{Loss: 1, Samples: 3, Updated: now}}}, Choice{ID: "direct", Since: old}, "direct", false},
		{"stale current, fresh other: move", []Candidate{{"direct", m(10*ms, 0, time.Minute)}, {"parent:a", m(50*ms, 0, 0)}}, Choice{ID: "direct", Since: old}, "parent:a", true},
		{"stale other ignored", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:a", m(5*ms, 0, time.Minute)}}, Choice{ID: "direct", Since: old}, "direct", false},
		{"all stale: stay", []Candidate{{"direct", m(50*ms, 0, time.Minute)}, {"parent:a", m(5*ms, 0, time.Minute)}}, Choice{ID: "direct", Since: old}, "direct", false},
		{"successes without latency are no measurement", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:a", Stats{Samples: 9, Updated: now}}}, Choice{ID: "direct", Since: old}, "direct", false},
		{"current gone", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:b", m(30*ms, 0, 0)}}, Choice{ID: "parent:a", Since: old}, "parent:b", true},
		{"three paths: the best", []Candidate{{"direct", m(150*ms, 0.02, 0)}, {"parent:a", m(40*ms, 0, 0)}, {"parent:b", m(30*ms, 0, 0)}}, Choice{ID: "direct", Since: old}, "parent:b", true},
		{"throughput counts", []Candidate{{"direct", Stats{TTFB: 10 * ms, Throughput: 1 << 20, Samples: 5, Updated: now}}, {"parent:a", Stats{TTFB: 20 * ms, Throughput: 100 << 20, Samples: 5, Updated: now}}}, Choice{ID: "direct", Since: old}, "parent:a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Choose(tc.cands, tc.cur, now, p)
			if got.ID != tc.want {
				t.Fatalf("chose %q, want %q", got.ID, tc.want)
			}
			if moved := got.Since.Equal(now) && got.ID != tc.cur.ID; moved != tc.moved {
				t.Fatalf("moved %v (since %v), want %v", moved, got.Since, tc.moved)
			}
		})
	}
}

// A better path takes over only once it stayed better for Confirm; a
// blip resets the wait.
func TestChooseConfirm(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := Policy{Margin: 0.2, MinGain: 10 * time.Millisecond, Confirm: time.Second, StaleAfter: time.Minute}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	st := func(ttfb time.Duration, when time.Time) Stats {
		return Stats{TTFB: ttfb, Samples: 9, Updated: when}
	}
	slow := func(when time.Time) []Candidate {
		return []Candidate{{"direct", st(150*time.Millisecond, when)}, {"parent:a", st(5*time.Millisecond, when)}}
	}
	cur := Choice{ID: "direct", Since: t0.Add(-time.Hour)}
	c := Choose(slow(at(0)), cur, at(0), p)
	if c.ID != "direct" || c.Pending != "parent:a" {
		t.Fatalf("at once: %+v, want direct with parent:a pending", c)
	}
	c = Choose(slow(at(500*time.Millisecond)), c, at(500*time.Millisecond), p)
	if c.ID != "direct" || c.Pending != "parent:a" || !c.PendingSince.Equal(t0) {
		t.Fatalf("after 0.5s: %+v", c)
	}
	// A blip: direct fine again for a moment, the wait starts over.
	fine := []Candidate{{"direct", st(5*time.Millisecond, at(600*time.Millisecond))}, {"parent:a", st(5*time.Millisecond, at(600*time.Millisecond))}}
	c = Choose(fine, c, at(600*time.Millisecond), p)
	if c.ID != "direct" || c.Pending != "" {
		t.Fatalf("after the blip: %+v", c)
	}
	c = Choose(slow(at(700*time.Millisecond)), c, at(700*time.Millisecond), p)
	c = Choose(slow(at(1500*time.Millisecond)), c, at(1500*time.Millisecond), p)
	if c.ID != "direct" {
		t.Fatalf("moved 0.8s after the blip: %+v", c)
	}
	c = Choose(slow(at(1700*time.Millisecond)), c, at(1700*time.Millisecond), p)
	if c.ID != "parent:a" || !c.Since.Equal(at(1700*time.Millisecond)) || c.Pending != "" {
		t.Fatalf("after a second of being better: %+v", c)
	}
	// A failing path is left without waiting.
	failing := []Candidate{{"direct", st(5*time.Millisecond, at(2*time.Second))}, {"parent:a", Stats{TTFB: 5 * time.Millisecond, Loss: 0.7, Samples: 9, Updated: at(2 * time.Second)}}}
	if c = Choose(failing, c, at(2*time.Second), p); c.ID != "direct" {
		t.Fatalf("failing parent kept: %+v", c)
	}
}

func TestObserve(t *testing.T) {
	now := time.Unix(1e9, 0)
	var st Stats
	st.Observe(Sample{TTFB: 100 * time.Millisecond, RTT: 40 * time.Millisecond}, now)
	if st.TTFB != 100*time.Millisecond || st.RTT != 40*time.Millisecond || st.Loss != 0 || st.Samples != 1 {
		t.Fatalf("first sample: %+v", st)
	}
	st.Observe(Sample{TTFB: 200 * time.Millisecond, Bytes: 1 << 20, Duration: time.Second}, now)
	if st.TTFB != 130*time.Millisecond || st.Throughput != 1<<20 {
		t.Fatalf("second sample: %+v", st)
	}
	st.Observe(Sample{TTFB: 10 * time.Second}, now)
	if st.TTFB != 130*time.Millisecond+time.Duration(0.3*float64(390*time.Millisecond)) {
		t.Fatalf("an outlier moved the average too far: %+v", st)
	}
	st.TTFB = 130 * time.Millisecond
	st.Observe(Sample{Failed: true}, now)
	if st.TTFB != 130*time.Millisecond || st.Loss < 0.0199 || st.Loss > 0.0201 || st.Samples != 4 || st.Fails != 1 {
		t.Fatalf("failure: %+v", st)
	}
	st.Observe(Sample{TTFB: time.Millisecond, Bytes: 100, Duration: time.Millisecond}, now)
	if st.Throughput != 1<<20 {
		t.Fatalf("a small body changed throughput: %+v", st)
	}
	// Retransmitted packets count as the share lost.
	var l Stats
	l.Observe(Sample{TTFB: time.Millisecond}, now)
	l.Observe(Sample{TTFB: time.Millisecond, Lost: 0.5}, now)
	if l.Loss < 0.0099 || l.Loss > 0.0101 {
		t.Fatalf("half the packets of one fetch in two lost: loss %v", l.Loss)
	}
	var f Stats
	f.Observe(Sample{Failed: true}, now)
	if _, ok := f.Score(); ok {
		t.Fatalf("a path that only failed has a score: %+v", f)
	}
}

func TestRank(t *testing.T) {
	nodes := []string{"seoul-edge-1", "seoul-edge-2", "tokyo-edge-1", "tokyo-edge-2"}
	owners := map[string]int{}
	moved := 0
	for i := range 4000 {
		key := fmt.Sprintf("http\x00shop\x00/obj/%d", i)
		r := Rank(key, nodes)
		if len(r) != len(nodes) {
			t.Fatalf("rank %v", r)
		}
		if r2 := Rank(key, []string{nodes[3], nodes[1], nodes[2], nodes[0]}); r2[0] != r[0] {
			t.Fatalf("the owner depends on the order of nodes: %v %v", r, r2)
		}
		owners[r[0]]++
		// Without the owner, the key goes to the next ranked node; the
		// keys of other owners stay where they were.
		without := Rank(key, nodes[1:])
		if r[0] == nodes[0] {
			if without[0] != r[1] {
				t.Fatalf("key %d: without its owner it went to %s, not %s", i, without[0], r[1])
			}
			moved++
		} else if without[0] != r[0] {
			t.Fatalf("key %d moved from %s although its owner stayed", i, r[0])
		}
	}
	for n, c := range owners {
		if c < 800 || c > 1200 {
			t.Errorf("%s owns %d of 4000 keys, want about 1000", n, c)
		}
	}
	if moved != owners[nodes[0]] {
		t.Fatalf("moved %d, owned %d", moved, owners[nodes[0]])
	}
}
