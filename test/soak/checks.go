package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/store"
	"github.com/intercloud/intercloud/test/multicloud"
)

// dnsChecker asks each cloud's DNS node, from that cloud's client, which
// edges serve shop, every second, until ctx ends.
func (r *runner) dnsChecker(ctx context.Context) []DNSAnswer {
	var out []DNSAnswer
	for ctx.Err() == nil {
		for _, q := range []struct{ ns, server, name string }{
			{multicloud.NSKR, SeoulDNS, "seoul-dns"}, {multicloud.NSJP, TokyoDNS, "tokyo-dns"},
		} {
			a := DNSAnswer{Server: q.name, Time: now()}
			got, _, err := r.topo.Dig(ctx, q.ns, q.server, multicloud.ShopDomain, "")
			if ctx.Err() != nil {
				return out
			}
			if err != nil {
				a.Err = firstLine(err.Error())
			}
			a.Answers = got
			out = append(out, a)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return out
}

// LeaseMargin is what the DNS invariant allows past the lease TTL for the
// expiry to reach the DNS nodes through the store's watch.
const LeaseMargin = time.Second

// DeadAnswers lists the answers that named an edge killed longer than
// the lease TTL (plus LeaseMargin) before the query was sent.
func (r *Recording) DeadAnswers(p *Phase) []string {
	var bad []string
	for _, a := range p.DNSAnswers {
		for _, f := range p.Faults {
			if f.Kind != "kill-edge" || a.Time.After(f.Healed) || !slices.Contains(a.Answers, Edges[f.Target]) {
				continue
			}
			if dead := a.Time.Sub(f.Start); dead > r.LeaseTTL+LeaseMargin {
				bad = append(bad, fmt.Sprintf("%s answered %s (%s) at +%.1fs, dead for %.1fs (lease TTL %s)",
					a.Server, Edges[f.Target], f.Target, a.Time.Sub(p.Start).Seconds(), dead.Seconds(), r.LeaseTTL))
			}
		}
	}
	return bad
}

// routeChecker looks at both gateways' kernel routes every two seconds.
func (r *runner) routeChecker(ctx context.Context) []RouteSample {
	var out []RouteSample
	for ctx.Err() == nil {
		for _, gw := range []string{"seoul-gw", "tokyo-gw"} {
			s := r.routeSample(ctx, gw)
			if ctx.Err() != nil {
				return out
			}
			out = append(out, s)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return out
}

// routeSample lists what a gateway's kernel lacks of the routes a path
// exists for: the other cloud, on-premises and its bulk /24s.
func (r *runner) routeSample(ctx context.Context, gw string) RouteSample {
	s := RouteSample{Gateway: gw, Time: now()}
	out, err := r.topo.Run(ctx, gw, "ip", "-4", "route", "show", "proto", multicloud.Protocol)
	if err != nil {
		s.Missing = []string{"(ip route: " + firstLine(err.Error()) + ")"}
		return s
	}
	other := map[string]string{"seoul-gw": "10.2.0.0/16", "tokyo-gw": "10.1.0.0/16"}[gw]
	have := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		have[f[0]] = true
		if strings.HasPrefix(f[0], "10.") && strings.HasSuffix(f[0], "/24") {
			if o, _ := strconv.Atoi(strings.Split(f[0], ".")[1]); o >= 128 {
				s.Bulk++
			}
		}
	}
	for _, want := range []string{other, "10.9.0.0/16"} {
		if !have[want] {
			s.Missing = append(s.Missing, want)
		}
	}
	return s
}

// MissingRoutes lists the route samples that lacked a route outside every
// fault window (a path existed, the route did not).
func (r *Recording) MissingRoutes(p *Phase) []string {
	var bad []string
	for _, s := range p.Routes {
		if len(s.Missing) == 0 && s.Bulk >= BulkPrefixes {
			continue
		}
		if _, ok := p.window(s.Time, s.Time, r.Slack); ok {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s at +%.1fs: missing %v, %d of %d on-premises /24s", s.Gateway, s.Time.Sub(p.Start).Seconds(), s.Missing, s.Bulk, BulkPrefixes))
	}
	return bad
}

// storeChecker asks every store member for its /health (etcd's: a
// leader and a working raft) every five seconds.
func (r *runner) storeChecker(ctx context.Context) []StoreSample {
	var out []StoreSample
	for ctx.Err() == nil {
		for i := 1; i <= 3; i++ {
			s := StoreSample{Member: multicloud.StoreMemberNS(i), Time: now()}
			o, err := r.topo.Run(ctx, multicloud.NSControl, "curl", "-sS", "--max-time", "3", "http://"+multicloud.StoreMemberAddr(i)+":2379/health")
			if ctx.Err() != nil {
				return out
			}
			s.Health = firstLine(o)
			s.OK = err == nil && strings.Contains(o, `"health":"true"`)
			out = append(out, s)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	return out
}

// watchExits records, until ctx ends, every watched process that exits
// while no kill fault is on it.
func (r *runner) watchExits(ctx context.Context) []Exit {
	var out []Exit
	for ctx.Err() == nil {
		for _, ns := range r.procNames() {
			r.mu.Lock()
			p := r.topo.Proc(ns)
			_, killed := r.dead[ns]
			ended := false
			if p != nil && !killed && !r.exited[p] {
				select {
				case <-p.Done():
					ended, r.exited[p] = true, true
				default:
				}
			}
			r.mu.Unlock()
			if ended {
				out = append(out, Exit{Name: ns, Time: now(), Err: fmt.Sprint(p.Err()), Tail: tailLines(p.Output(), 5)})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return out
}

// procNames are the namespaces whose process the soak watches.
func (r *runner) procNames() []string {
	ns := append(r.topo.Nodes(), multicloud.NSControl, multicloud.NSOnPrem)
	for i := 1; i <= 3; i++ {
		ns = append(ns, multicloud.StoreMemberNS(i))
	}
	return ns
}

// procStats reads every running daemon's resident memory and open
// descriptors from /proc.
func (r *runner) procStats() []ProcStat {
	var out []ProcStat
	for _, ns := range r.procNames() {
		p := r.topo.Proc(ns)
		if p == nil {
			continue
		}
		select {
		case <-p.Done():
			continue
		default:
		}
		st := ProcStat{Name: ns, Pid: p.Pid()}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					st.RSS = kb << 10
				}
			}
		}
		if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", st.Pid)); err == nil {
			st.FDs = len(fds)
		}
		out = append(out, st)
	}
	return out
}

// endChecks are the control-plane invariants, checked once the faults are
// healed: every process alive; a last apply reaches every node; every
// apply that returned success is in history; no invalidation in progress;
// every node on the current revision and hash; no smuggled request seen.
func (r *runner) endChecks(ctx context.Context, p *Phase) []string {
	var bad []string
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for _, e := range p.Exits {
		bad = append(bad, fmt.Sprintf("%s exited by itself at +%.1fs (%s): %s", e.Name, e.Time.Sub(p.Start).Seconds(), e.Err, strings.ReplaceAll(e.Tail, "\n", " | ")))
	}
	final := fmt.Sprintf("final-%d", time.Now().Unix())
	out, err := r.topo.CLI(ctx, "apply", "--param", "shop.stamp="+final)
	if err != nil {
		bad = append(bad, fmt.Sprintf("the final apply failed: %v: %s", err, out))
	} else if err := r.topo.WaitAllCurrent(ctx, 2*time.Minute); err != nil {
		bad = append(bad, "after the final apply: "+err.Error())
	}
	for edge, ip := range Edges {
		if out == "" || err != nil {
			break // no final apply to look for
		}
		ns := multicloud.NSKR
		if strings.HasPrefix(edge, "tokyo") {
			ns = multicloud.NSJP
		}
		resp, err := r.topo.Get(ctx, ns, ip, multicloud.ShopDomain, "/index.html")
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s after the final apply: %v", edge, err))
		case resp.Header.Get("X-Soak-Stamp") != final:
			bad = append(bad, fmt.Sprintf("%s serves stamp %q after the final apply of %q", edge, resp.Header.Get("X-Soak-Stamp"), final))
		}
	}
	// History holds every revision an apply, promote or rollback returned.
	hout, err := r.topo.Run(ctx, multicloud.NSControl, "curl", "-sS", "--max-time", "10", multicloud.ControllerURL+"/v1/history")
	var hist []store.RevisionInfo
	if err == nil {
		err = json.Unmarshal([]byte(hout), &hist)
	}
	if err != nil {
		bad = append(bad, fmt.Sprintf("history: %v: %s", err, firstLine(hout)))
	} else {
		have := map[int64]bool{}
		for _, h := range hist {
			have[h.Revision] = true
		}
		for _, o := range p.Control {
			if o.OK && o.Revision > 0 && !have[o.Revision] {
				bad = append(bad, fmt.Sprintf("%s at +%.1fs returned revision %d, which is not in history", o.Kind, o.Start.Sub(p.Start).Seconds(), o.Revision))
			}
		}
	}
	// Invalidations: every edge is back, so none may stay in progress.
	if err := multicloud.Eventually(ctx, time.Second, func() error {
		iout, err := r.topo.Run(ctx, multicloud.NSControl, "curl", "-sS", "--max-time", "10", multicloud.ControllerURL+"/v1/invalidations")
		if err != nil {
			return err
		}
		var invs []controller.InvalidationStatus
		if err := json.Unmarshal([]byte(iout), &invs); err != nil {
			return fmt.Errorf("%v: %s", err, firstLine(iout))
		}
		var open []string
		for _, inv := range invs {
			if inv.Status != "Completed" {
				open = append(open, fmt.Sprintf("%s (done by %v of %v)", inv.ID, inv.Done, inv.Edges))
			}
		}
		if len(open) > 0 {
			return fmt.Errorf("invalidations still in progress with every edge back: %s", strings.Join(open, ", "))
		}
		return nil
	}); err != nil {
		bad = append(bad, err.Error())
	}
	// No node half on a revision: its reported hash is the revision's.
	if st, err := r.topo.Status(ctx); err != nil {
		bad = append(bad, "status: "+err.Error())
	} else {
		for _, n := range st.Nodes {
			if n.Live && (n.Revision != st.Revision || n.Hash != st.Hash) {
				bad = append(bad, fmt.Sprintf("%s: revision %d hash %s, the site is at %d hash %s", n.Name, n.Revision, n.Hash, st.Revision, st.Hash))
			}
		}
	}
	// A smuggled request the edges parsed as a request of its own shows in
	// their access logs.
	for edge := range Edges {
		b, err := os.ReadFile(filepath.Join(r.topo.Dir, "state", edge, "access.log"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), canary) {
			bad = append(bad, fmt.Sprintf("%s logged a request for the smuggled path %s: a framing disagreement let it through", edge, canary))
		}
	}
	return bad
}

func tailLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
