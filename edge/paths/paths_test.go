package paths

import (
	"fmt"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := Policy{Margin: 0.2, Hold: 3 * time.Second, StaleAfter: 30 * time.Second}
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
		{"nothing measured: stay", []Candidate{{"direct", none}, {"parent:a", none}}, Choice{"parent:a", old}, "parent:a", false},
		{"first choice: the best measured", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:a", m(20*ms, 0, 0)}}, Choice{}, "parent:a", true},
		{"missing data loses to measured", []Candidate{{"direct", none}, {"parent:a", m(80*ms, 0, 0)}}, Choice{}, "parent:a", true},
		{"current unmeasured, another measured: move", []Candidate{{"direct", none}, {"parent:a", m(80*ms, 0, 0)}}, Choice{"direct", old}, "parent:a", true},
		{"exact tie: keep current", []Candidate{{"direct", m(20*ms, 0, 0)}, {"parent:a", m(20*ms, 0, 0)}}, Choice{"parent:a", old}, "parent:a", false},
		{"exact tie, no current: the earlier", []Candidate{{"direct", m(20*ms, 0, 0)}, {"parent:a", m(20*ms, 0, 0)}}, Choice{}, "direct", true},
		{"within 10 %: no flap", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(91*ms, 0, 0)}}, Choice{"direct", old}, "direct", false},
		{"within the margin: no flap", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(81*ms, 0, 0)}}, Choice{"direct", old}, "direct", false},
		{"better beyond the margin: move", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(79*ms, 0, 0)}}, Choice{"direct", old}, "parent:a", true},
		{"better but held too briefly: stay", []Candidate{{"direct", m(100*ms, 0, 0)}, {"parent:a", m(10*ms, 0, 0)}}, Choice{"direct", now.Add(-time.Second)}, "direct", false},
		{"failing current left at once", []Candidate{{"direct", m(10*ms, 0.6, 0)}, {"parent:a", m(40*ms, 0, 0)}}, Choice{"direct", now}, "parent:a", true},
		{"loss counts against a path", []Candidate{{"direct", m(20*ms, 0.1, 0)}, {"parent:a", m(25*ms, 0, 0)}}, Choice{"direct", old}, "parent:a", true},
		{"all failed: stay", []Candidate{{"direct", Stats{Loss: 1, Samples: 3, Updated: now}}, {"parent:a", Stats{Loss: 1, Samples: 3, Updated: now}}}, Choice{"direct", old}, "direct", false},
		{"stale current, fresh other: move", []Candidate{{"direct", m(10*ms, 0, time.Minute)}, {"parent:a", m(50*ms, 0, 0)}}, Choice{"direct", old}, "parent:a", true},
		{"stale other ignored", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:a", m(5*ms, 0, time.Minute)}}, Choice{"direct", old}, "direct", false},
		{"all stale: stay", []Candidate{{"direct", m(50*ms, 0, time.Minute)}, {"parent:a", m(5*ms, 0, time.Minute)}}, Choice{"direct", old}, "direct", false},
		{"successes without latency are no measurement", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:a", Stats{Samples: 9, Updated: now}}}, Choice{"direct", old}, "direct", false},
		{"current gone", []Candidate{{"direct", m(50*ms, 0, 0)}, {"parent:b", m(30*ms, 0, 0)}}, Choice{"parent:a", old}, "parent:b", true},
		{"three paths: the best", []Candidate{{"direct", m(150*ms, 0.02, 0)}, {"parent:a", m(40*ms, 0, 0)}, {"parent:b", m(30*ms, 0, 0)}}, Choice{"direct", old}, "parent:b", true},
		{"throughput counts", []Candidate{{"direct", Stats{TTFB: 10 * ms, Throughput: 1 << 20, Samples: 5, Updated: now}}, {"parent:a", Stats{TTFB: 20 * ms, Throughput: 100 << 20, Samples: 5, Updated: now}}}, Choice{"direct", old}, "parent:a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Choose(tc.cands, tc.cur, now, p)
			if got.ID != tc.want {
				t.Fatalf("chose %q, want %q", got.ID, tc.want)
			}
			if moved := got.Since.Equal(now) && got != tc.cur; moved != tc.moved {
				t.Fatalf("moved %v (since %v), want %v", moved, got.Since, tc.moved)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	now := time.Unix(1e9, 0)
	var st Stats
	st.Observe(Sample{TTFB: 100 * time.Millisecond}, now)
	if st.TTFB != 100*time.Millisecond || st.Loss != 0 || st.Samples != 1 {
		t.Fatalf("first sample: %+v", st)
	}
	st.Observe(Sample{TTFB: 200 * time.Millisecond, Bytes: 1 << 20, Duration: time.Second}, now)
	if st.TTFB != 130*time.Millisecond || st.Throughput != 1<<20 {
		t.Fatalf("second sample: %+v", st)
	}
	st.Observe(Sample{Failed: true}, now)
	if st.TTFB != 130*time.Millisecond || st.Loss < 0.099 || st.Loss > 0.101 {
		t.Fatalf("failure: %+v", st)
	}
	st.Observe(Sample{TTFB: time.Millisecond, Bytes: 100, Duration: time.Millisecond}, now)
	if st.Throughput != 1<<20 {
		t.Fatalf("a small body changed throughput: %+v", st)
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
