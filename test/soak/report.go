package soak

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Blame is where a phase's failures went: to the fault windows they fell
// in, by kind, or outside every window (a broken invariant).
type Blame struct {
	ByKind map[string]int64
	// ClockTools are the failures blamed on the clock step that the load
	// generators made themselves: wrk's request timeouts and dnsperf's
	// run length are read off the wall clock, so a request in flight at
	// a step times out and a slice running across the step back outlives
	// its deadline and is killed without statistics.
	ClockTools int64
	Outside    int64
	// OutsideWhat says which failures fell outside, one line each.
	OutsideWhat []string
}

// window finds the fault whose window overlaps [from, to].
func (p *Phase) window(from, to time.Time, slack time.Duration) (Fault, bool) {
	for _, f := range p.Faults {
		s, e := f.Window(slack)
		if !from.After(e) && !to.Before(s) {
			return f, true
		}
	}
	return Fault{}, false
}

// Attribute blames every failed request, query, ping and command of the
// phase on the fault window it overlaps. A slice of load overlapping a
// window is blamed as a whole: the load generators count per slice.
func (p *Phase) Attribute(slack time.Duration) Blame {
	b := Blame{ByKind: map[string]int64{}}
	blame := func(what string, n int64, from, to time.Time) {
		if n == 0 {
			return
		}
		if f, ok := p.window(from, to, slack); ok {
			b.ByKind[f.Kind] += n
			return
		}
		b.Outside += n
		b.OutsideWhat = append(b.OutsideWhat, fmt.Sprintf("%s: %d failed at +%.1fs..+%.1fs", what, n, from.Sub(p.Start).Seconds(), to.Sub(p.Start).Seconds()))
	}
	clock := func(from, to time.Time) bool {
		f, ok := p.window(from, to, slack)
		return ok && f.Kind == ClockKind
	}
	for _, s := range p.HTTP {
		blame("http "+s.Target+sliceErr(s), s.Failed, s.Start, s.End)
		if s.Timeouts > 0 && clock(s.Start, s.End) {
			b.ClockTools += s.Timeouts
		}
	}
	for _, s := range p.DNS {
		blame("dns "+s.Target+sliceErr(s), s.Failed, s.Start, s.End)
		if s.Err != "" && clock(s.Start, s.End) {
			b.ClockTools += s.Failed
		}
	}
	for _, pg := range p.Ping {
		if !pg.OK {
			// An echo is lost within its one-second wait before it is
			// reported.
			blame("ping from "+pg.From, 1, pg.Time.Add(-time.Second), pg.Time)
		}
	}
	for _, o := range p.Control {
		if !o.OK {
			blame("command "+o.Kind+": "+firstLine(o.Err), 1, o.Start, o.End)
		}
	}
	return b
}

func sliceErr(s Slice) string {
	if s.Err != "" {
		return " (" + firstLine(s.Err) + ")"
	}
	return ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// Latency is a phase's HTTP latency in milliseconds.
type Latency struct{ P50, P99, Max float64 }

// HTTPLatency merges the slices' percentiles, each weighted by the
// requests it answered (a percentile of percentiles: close, not exact;
// the maximum is exact).
func (p *Phase) HTTPLatency() Latency {
	type pt struct{ v, w float64 }
	var pts []pt
	var l Latency
	total := 0.0
	for _, s := range p.HTTP {
		l.Max = math.Max(l.Max, s.Max)
		if len(s.Pct) == 0 || s.OK == 0 {
			continue
		}
		w := float64(s.OK) / float64(len(s.Pct))
		for _, v := range s.Pct {
			pts = append(pts, pt{v, w})
			total += w
		}
	}
	if total == 0 {
		return l
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].v < pts[j].v })
	q := func(f float64) float64 {
		acc := 0.0
		for _, x := range pts {
			acc += x.w
			if acc >= f*total {
				return x.v
			}
		}
		return pts[len(pts)-1].v
	}
	l.P50, l.P99 = q(0.50), q(0.99)
	return l
}

// Counts sums slices: answered, failed, hits.
func Counts(ss []Slice) (ok, failed, hits int64) {
	for _, s := range ss {
		ok += s.OK
		failed += s.Failed
		hits += s.Hits
	}
	return
}

// dnsMeanMax is the query-weighted mean and the maximum of dnsperf's.
func dnsMeanMax(ss []Slice) (mean, max float64) {
	var sum, n float64
	for _, s := range ss {
		sum += s.Mean * float64(s.OK)
		n += float64(s.OK)
		max = math.Max(max, s.Max)
	}
	if n > 0 {
		mean = sum / n
	}
	return
}

// Leak bounds: a process may grow by this much between the start and the
// end of the load (plus an edge's cache size), and open this many more
// descriptors.
const (
	LeakRSS = 64 << 20
	LeakFDs = 64
)

// Leaks compares the processes that ran the whole phase (same pid at both
// ends); cacheBytes is what a process may add for its cache, by name.
func (p *Phase) Leaks(cacheBytes map[string]int64) []string {
	var bad []string
	for _, e := range p.ProcsEnd {
		i := slices.IndexFunc(p.ProcsStart, func(s ProcStat) bool { return s.Name == e.Name && s.Pid == e.Pid })
		if i < 0 {
			continue
		}
		s := p.ProcsStart[i]
		if e.RSS > s.RSS+LeakRSS+cacheBytes[e.Name] {
			bad = append(bad, fmt.Sprintf("%s: resident memory %s → %s, above the bound (+%s%s)", e.Name, mib(s.RSS), mib(e.RSS), mib(LeakRSS), cacheNote(cacheBytes[e.Name])))
		}
		if e.FDs > s.FDs+LeakFDs {
			bad = append(bad, fmt.Sprintf("%s: open descriptors %d → %d, above the bound (+%d)", e.Name, s.FDs, e.FDs, LeakFDs))
		}
	}
	return bad
}

func cacheNote(n int64) string {
	if n == 0 {
		return ""
	}
	return " and the cache's " + mib(n)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// unrecovered lists the faults of the phase that never recovered or
// could not be made.
func (p *Phase) unrecovered() []string {
	var bad []string
	for _, f := range p.Faults {
		if f.NotMade != "" {
			bad = append(bad, fmt.Sprintf("%s %s at +%.1fs could not be made: %s", f.Kind, f.Target, f.Start.Sub(p.Start).Seconds(), f.NotMade))
		}
		if f.Recovered.IsZero() {
			bad = append(bad, fmt.Sprintf("%s %s at +%.1fs: never recovered (%s)", f.Kind, f.Target, f.Start.Sub(p.Start).Seconds(), f.Note))
		}
	}
	return bad
}

// Problems are every broken invariant of a phase: the violations found
// while running, failures outside fault windows, leaks and faults that
// never recovered.
func (r *Recording) Problems(p *Phase, cacheBytes map[string]int64) []string {
	out := slices.Clone(p.Violations)
	b := p.Attribute(r.Slack)
	for _, w := range b.OutsideWhat {
		out = append(out, "failure outside every fault window: "+w)
	}
	out = append(out, r.DeadAnswers(p)...)
	out = append(out, r.MissingRoutes(p)...)
	out = append(out, p.Leaks(cacheBytes)...)
	out = append(out, p.unrecovered()...)
	return out
}

// Report writes the text report of a recording.
func (r *Recording) Report(w io.Writer, cacheBytes map[string]int64) {
	pr := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	pr("intercloud soak: seed %d, %s of load per phase, lease TTL %s, a fault's window ends %s after it recovered", r.Seed, r.Duration, r.LeaseTTL, r.Slack)
	base, run := r.Phase("baseline"), r.Phase("faults")
	for _, p := range r.Phases {
		pr("")
		pr("== phase %s: %s → %s (%.0fs)", p.Name, p.Start.UTC().Format(time.TimeOnly), p.End.UTC().Format(time.TimeOnly), p.End.Sub(p.Start).Seconds())
		ok, failed, hits := Counts(p.HTTP)
		var refused int64
		for _, s := range p.HTTP {
			refused += s.Refused
		}
		pr("HTTP (wrk, hits/misses/ranges/uncacheable): %d answered, %d failed (%s), %s of answers were cache hits", ok, failed, pct(failed, ok+failed), pct(hits, ok))
		pr("  of the failures, %d were connections refused by a dead edge (wrk retries at once: attempts, not requests)", refused)
		l := p.HTTPLatency()
		pr("  latency: p50 %.2f ms, p99 %.2f ms, max %.1f ms", l.P50, l.P99, l.Max)
		dok, dfailed, _ := Counts(p.DNS)
		var dlost int64
		for _, s := range p.DNS {
			dlost += s.Lost
		}
		mean, max := dnsMeanMax(p.DNS)
		pr("DNS (dnsperf, plain and ECS): %d answered, %d failed (%s: %d lost, %d with an error code); mean %.3f ms, max %.1f ms", dok, dfailed, pct(dfailed, dok+dfailed), dlost, dfailed-dlost, mean, max)
		var pok, plost int64
		for _, pg := range p.Ping {
			if pg.OK {
				pok++
			} else {
				plost++
			}
		}
		pr("Ping between the clouds' clients: %d answered, %d lost", pok, plost)
		b := p.Attribute(r.Slack)
		if len(p.Faults) > 0 {
			pr("")
			pr("Faults (seeded schedule), each with its window [start, recovered + %s]:", r.Slack)
			pr("  %8s %8s %8s  %-16s %-14s %s", "start", "healed", "recov.", "kind", "target", "note")
			for _, f := range p.Faults {
				rec := "never"
				if !f.Recovered.IsZero() {
					rec = fmt.Sprintf("+%.1fs", f.Recovered.Sub(f.Healed).Seconds())
				}
				note := f.Note
				if f.NotMade != "" {
					note = "NOT MADE: " + f.NotMade
				}
				if f.Reroute > 0 {
					note = strings.TrimSpace(fmt.Sprintf("rerouted in %.1fs %s", f.Reroute.Seconds(), note))
				}
				pr("  %7.1fs %7.1fs %8s  %-16s %-14s %s", f.Start.Sub(p.Start).Seconds(), f.Healed.Sub(p.Start).Seconds(), rec, f.Kind, f.Target, note)
			}
			pr("Failures by fault kind (requests, queries, pings and commands):")
			kinds := make([]string, 0, len(b.ByKind))
			for k := range b.ByKind {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			for _, k := range kinds {
				pr("  %-16s %d", k, b.ByKind[k])
				if k == ClockKind && b.ClockTools > 0 {
					pr("    of which %d the load generators' own: wrk's timeouts and dnsperf's run length read the wall clock", b.ClockTools)
				}
			}
		}
		pr("Failures outside every fault window: %d", b.Outside)
		for _, w := range b.OutsideWhat {
			pr("  %s", w)
		}
		var applies, appliesOK, other, otherOK int
		for _, o := range p.Control {
			if o.Kind == "apply" {
				applies++
				if o.OK {
					appliesOK++
				}
			} else {
				other++
				if o.OK {
					otherOK++
				}
			}
		}
		pr("Control plane: %d of %d applies and %d of %d invalidations/promotes/rollbacks succeeded", appliesOK, applies, otherOK, other)
		unanswered := 0
		for _, a := range p.DNSAnswers {
			if a.Err != "" {
				unanswered++
			}
		}
		pr("DNS lease checks (no answer names an edge dead longer than the lease TTL): %d queries, %d unanswered", len(p.DNSAnswers), unanswered)
		var storeBad []string
		for _, st := range p.Store {
			if !st.OK {
				storeBad = append(storeBad, fmt.Sprintf("+%.0fs %s", st.Time.Sub(p.Start).Seconds(), st.Member))
			}
		}
		pr("Store members' /health: %d looks, %d unhealthy or unanswered%s", len(p.Store), len(storeBad), listSome(storeBad, 12))
		var rs, missing int
		for _, s := range p.Routes {
			rs++
			if len(s.Missing) > 0 {
				missing++
			}
		}
		pr("Route checks: %d looks at the gateways' kernels, %d with a route missing (inside fault windows unless listed below)", rs, missing)
		if len(p.ProcsEnd) > 0 {
			pr("Processes (resident memory, open descriptors; start → end of the load):")
			for _, e := range p.ProcsEnd {
				i := slices.IndexFunc(p.ProcsStart, func(s ProcStat) bool { return s.Name == e.Name })
				if i < 0 {
					continue
				}
				s := p.ProcsStart[i]
				restarted := ""
				if s.Pid != e.Pid {
					restarted = "  (restarted by a fault: not compared)"
				}
				pr("  %-14s %10s → %10s  %4d → %4d%s", e.Name, mib(s.RSS), mib(e.RSS), s.FDs, e.FDs, restarted)
			}
			pr("  bound: +%s (+ an edge's cache.memory) and +%d descriptors", mib(LeakRSS), LeakFDs)
		}
		if len(p.BadInput) > 0 {
			pr("Bad input sent during the phase:")
			for _, bi := range p.BadInput {
				pr("  %-22s → %-16s %8d sent, %8d refused or closed  %s", bi.Kind, bi.Target, bi.Sent, bi.Refused, bi.Note)
			}
		}
		for _, n := range p.Notes {
			pr("Note: %s", n)
		}
		probs := r.Problems(p, cacheBytes)
		if len(probs) == 0 {
			pr("Invariants: all held.")
		} else {
			pr("Invariants broken (%d):", len(probs))
			for _, v := range probs {
				pr("  %s", v)
			}
		}
	}
	if base != nil && run != nil {
		lb, lr := base.HTTPLatency(), run.HTTPLatency()
		pr("")
		pr("Added HTTP latency under faults (faults − baseline): p50 %+.2f ms, p99 %+.2f ms, max %+.1f ms", lr.P50-lb.P50, lr.P99-lb.P99, lr.Max-lb.Max)
	}
}

// listSome shows up to n items after a colon.
func listSome(items []string, n int) string {
	if len(items) == 0 {
		return ""
	}
	more := ""
	if len(items) > n {
		items, more = items[:n], fmt.Sprintf(" and %d more", len(items)-n)
	}
	return ": " + strings.Join(items, ", ") + more
}

func pct(n, of int64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.3f%%", 100*float64(n)/float64(of))
}
