package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/intercloud/intercloud/test/multicloud"
)

// Planned is one fault of a schedule: what, on which target, when (from
// the start of the phase) and for how long.
type Planned struct {
	At     time.Duration
	Kind   string
	Target string
	For    time.Duration
}

// kind is one kind of fault: the targets it picks from and how long it
// lasts.
type kind struct {
	name     string
	targets  []string
	min, max time.Duration
}

// Kinds are the faults the soak makes. The clock step (last: schedules
// drawn without it are the ones drawn before it existed) steps the host's
// CLOCK_REALTIME, not one node's: CLOCK_REALTIME cannot be set for one
// namespace (time namespaces offset only the monotonic and boot clocks)
// and Go reads it through the vDSO, where no LD_PRELOAD faketime reaches.
// Every process on the machine sees the step, so only a run alone on it
// draws the kind (Options.Clock; clock.go).
var Kinds = []kind{
	{"kill-edge", []string{"seoul-edge-1", "seoul-edge-2", "tokyo-edge-1", "tokyo-edge-2"}, 5 * time.Second, 15 * time.Second},
	{"kill-dns", []string{"seoul-dns", "tokyo-dns"}, 5 * time.Second, 15 * time.Second},
	{"kill-gateway", []string{"seoul-gw", "tokyo-gw"}, 5 * time.Second, 10 * time.Second},
	{"kill-controller", []string{multicloud.NSControl}, 5 * time.Second, 15 * time.Second},
	{"kill-store", []string{multicloud.StoreMemberNS(1), multicloud.StoreMemberNS(2), multicloud.StoreMemberNS(3)}, 5 * time.Second, 15 * time.Second},
	{"kill-origin", []string{"seoul-origin", "tokyo-origin"}, 5 * time.Second, 15 * time.Second},
	{"cut-line", []string{"dx"}, 8 * time.Second, 15 * time.Second},
	{"drop-underlay", []string{"vpn"}, 8 * time.Second, 15 * time.Second},
	{"loss", []string{"seoul-lan"}, 8 * time.Second, 15 * time.Second},
	{"slow-origin", []string{"blue"}, 8 * time.Second, 15 * time.Second},
	{"quorum-lost", []string{"store-1+2"}, 20 * time.Second, 20 * time.Second},
	{"disk-full", []string{"seoul-edge-1"}, 8 * time.Second, 12 * time.Second},
	// At most 12 s: ping's wall-clock stamps of the window are told from
	// those after it by their jump (unstepPings).
	{ClockKind, []string{"host"}, 8 * time.Second, 12 * time.Second},
}

// ClockKind is the clock-step fault: every process on the host sees
// CLOCK_REALTIME go ClockStep ahead for the window and back at its heal.
const ClockKind = "clock-step"

// kindsOf are the kinds named in only (all when empty), without the clock
// step unless clock.
func kindsOf(only []string, clock bool) []kind {
	var out []kind
	for _, k := range Kinds {
		if (len(only) == 0 || slices.Contains(only, k.name)) && (clock || k.name != ClockKind) {
			out = append(out, k)
		}
	}
	return out
}

// Schedule draws the faults of a phase of length d from seed and kinds
// (Kinds when none): one at a time, each followed by a gap for its
// recovery, none starting in the first warmup or so late that it could
// not heal before the end.
func Schedule(seed int64, d time.Duration, kinds ...kind) []Planned {
	if len(kinds) == 0 {
		kinds = Kinds
	}
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)>>1|1))
	const warmup, recovery = 5 * time.Second, 10 * time.Second
	var out []Planned
	at := warmup
	for {
		k := kinds[rng.IntN(len(kinds))]
		dur := k.min
		if k.max > k.min {
			dur += time.Duration(rng.Int64N(int64(k.max - k.min)))
		}
		dur = dur.Truncate(100 * time.Millisecond)
		if at+dur+recovery > d {
			return out
		}
		out = append(out, Planned{At: at, Kind: k.name, Target: k.targets[rng.IntN(len(k.targets))], For: dur})
		gap := 3*time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))
		at += dur + recovery + gap.Truncate(100*time.Millisecond)
	}
}

// inject makes the faults of plan one after the other, each healed after
// its time and followed by a wait for the site's recovery; the next one
// starts at its planned time or once the previous recovered, whichever is
// later. It returns what happened.
func (r *runner) inject(ctx context.Context, start time.Time, plan []Planned) []Fault {
	var out []Fault
	for _, p := range plan {
		if d := time.Until(start.Add(p.At)); d > 0 {
			select {
			case <-ctx.Done():
				return out
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			return out
		}
		f := Fault{Kind: p.Kind, Target: p.Target, Start: now()}
		r.logf("fault +%.1fs: %s %s for %s", f.Start.Sub(start).Seconds(), p.Kind, p.Target, p.For)
		heal, note, err := r.make(ctx, p)
		f.Note = note
		if err != nil {
			f.NotMade = firstLine(err.Error())
		}
		until := f.Start.Add(p.For)
		if p.Kind == "cut-line" {
			f.Reroute = r.waitReroute(ctx, until)
		}
		// Faults heal even when the phase is over: nothing is left broken.
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(until)):
		}
		if heal != nil {
			if err := heal(); err != nil {
				f.Note = fmt.Sprintf("%s; heal: %v", f.Note, err)
			}
		}
		f.Healed = now()
		var slow error
		f.Recovered, slow = r.waitRecoveredWhy(context.WithoutCancel(ctx), 2*time.Minute)
		if !f.Recovered.IsZero() && f.Recovered.Sub(f.Healed) > slowRecovery && slow != nil {
			// What recovery waited on longest is the first thing to know
			// about a slow one.
			f.Note = strings.TrimPrefix(f.Note+"; last still missing "+oneLine(slow.Error(), 400), "; ")
		}
		if f.Recovered.IsZero() {
			f.Note += fmt.Sprintf("; not recovered: %v", r.recoveredErr(context.WithoutCancel(ctx)))
		}
		r.logf("fault %s %s healed; recovered %s later", p.Kind, p.Target, f.Recovered.Sub(f.Healed).Round(100*time.Millisecond))
		out = append(out, f)
	}
	return out
}

// make starts one fault and returns what heals it.
func (r *runner) make(ctx context.Context, p Planned) (func() error, string, error) {
	t := r.topo
	// The topology's process table is written here and read by
	// watchExits: both under r.mu.
	restart := func(ns string, start func()) func() error {
		r.mu.Lock()
		t.KillNode(ns)
		r.dead[ns] = now()
		r.mu.Unlock()
		return func() error {
			r.mu.Lock()
			start()
			delete(r.dead, ns)
			r.mu.Unlock()
			return nil
		}
	}
	switch p.Kind {
	case "kill-edge", "kill-dns", "kill-gateway", "kill-origin":
		return restart(p.Target, func() { t.StartNode(p.Target) }), "", nil
	case "kill-controller":
		return restart(p.Target, t.StartController), "", nil
	case "kill-store":
		i := slices.Index(Kinds[4].targets, p.Target) + 1
		return restart(p.Target, func() { t.StartStoreMember(i) }), "", nil
	case "quorum-lost":
		h1 := restart(multicloud.StoreMemberNS(1), func() { t.StartStoreMember(1) })
		h2 := restart(multicloud.StoreMemberNS(2), func() { t.StartStoreMember(2) })
		return func() error { h1(); return h2() }, "two of three members killed", nil
	case "cut-line":
		link := func(state string) error {
			if out, err := t.Run(context.WithoutCancel(ctx), "seoul-gw", "ip", "link", "set", "dx", state); err != nil {
				return fmt.Errorf("ip link set dx %s: %v: %s", state, err, out)
			}
			return nil
		}
		if err := link("down"); err != nil {
			return nil, "", err
		}
		return func() error { return link("up") }, "", nil
	case "drop-underlay":
		// WireGuard's UDP between the gateways, dropped both ways at seoul.
		return r.nft(ctx, "seoul-gw", `table inet soak {
	chain in { type filter hook input priority 0; udp dport 51820 drop; udp sport 51820 drop; }
	chain out { type filter hook output priority 0; udp dport 51820 drop; udp sport 51820 drop; }
}`, "udp 51820 dropped at seoul-gw")
	case "loss":
		// 20% of what seoul's LAN sends through its gateway.
		return r.nft(ctx, "seoul-gw", `table inet soak {
	chain soakloss { type filter hook forward priority 0; iifname "lan" numgen random mod 100 < 20 drop; }
}`, "20% of seoul's forwarded packets dropped (nft numgen)")
	case "slow-origin":
		if err := r.toxi.Signal(syscall.SIGUSR1); err != nil {
			return nil, "", fmt.Errorf("toxiproxy: %w", err)
		}
		return func() error { return r.toxi.Signal(syscall.SIGUSR2) }, fmt.Sprintf("toxiproxy before blue: +%dms±%dms, %d KB/s", toxicLatency, toxicJitter, toxicRate), nil
	case "disk-full":
		return r.fillDisk(p.Target)
	case ClockKind:
		return r.stepClock(p)
	}
	return nil, "", fmt.Errorf("unknown fault kind %q", p.Kind)
}

// nft loads a ruleset into ns and returns what removes it.
func (r *runner) nft(ctx context.Context, ns, ruleset, note string) (func() error, string, error) {
	f := r.topo.Dir + "/soak-" + ns + ".nft"
	if err := writeFile(f, ruleset); err != nil {
		return nil, "", err
	}
	if out, err := r.topo.Run(ctx, ns, "nft", "-f", f); err != nil {
		return nil, "", fmt.Errorf("nft -f in %s: %v: %s", ns, err, out)
	}
	return func() error {
		out, err := r.topo.Run(context.Background(), ns, "nft", "delete", "table", "inet", "soak")
		if err != nil {
			return fmt.Errorf("nft delete table in %s: %v: %s", ns, err, out)
		}
		return nil
	}, note, nil
}

// waitReroute waits (until the fault's end at most) for the routes
// between the clouds to go over the tunnel, and says how long it took.
func (r *runner) waitReroute(ctx context.Context, until time.Time) time.Duration {
	start := time.Now()
	for time.Now().Before(until) && ctx.Err() == nil {
		if r.topo.CheckRoutes(ctx, overVPN()) == nil {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0
}

// waitRecovered waits for every node live, healthy and current, and every
// gateway with its routes; it returns when, or zero after d.
func (r *runner) waitRecovered(ctx context.Context, d time.Duration) time.Time {
	t, _ := r.waitRecoveredWhy(ctx, d)
	return t
}

// slowRecovery: a recovery slower than this says what it waited on.
const slowRecovery = 5 * time.Second

// waitRecoveredWhy is waitRecovered that also returns the last thing that
// was not recovered before it was.
func (r *runner) waitRecoveredWhy(ctx context.Context, d time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last error
	if multicloud.Eventually(ctx, time.Second, func() error {
		err := r.recoveredErr(ctx)
		if err != nil {
			last = err
		}
		return err
	}) != nil {
		return time.Time{}, last
	}
	return now(), last
}

// oneLine squeezes s onto one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func (r *runner) recoveredErr(ctx context.Context) error {
	if err := r.topo.AllCurrent(ctx); err != nil {
		return err
	}
	for _, gw := range []string{"seoul-gw", "tokyo-gw"} {
		s := r.routeSample(ctx, gw)
		if len(s.Missing) > 0 || s.Bulk < BulkPrefixes {
			return fmt.Errorf("%s: missing %v, %d of %d on-premises /24s", gw, s.Missing, s.Bulk, BulkPrefixes)
		}
	}
	return nil
}

// overVPN are the routes between the clouds while the line is cut.
func overVPN() []multicloud.WantRoute {
	return []multicloud.WantRoute{
		{NS: "seoul-gw", Dst: "10.2.0.0/16", Via: multicloud.TunnelTokyo, Dev: multicloud.TunnelIf("tokyo-gw"), Proto: multicloud.Protocol},
		{NS: "tokyo-gw", Dst: "10.1.0.0/16", Via: multicloud.TunnelSeoul, Dev: multicloud.TunnelIf("seoul-gw"), Proto: multicloud.Protocol},
	}
}
