package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Options are the table's collaborators.
type Options struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// NetnsPath installs into another network namespace
	// (/proc/<pid>/ns/net); empty means the current one.
	NetnsPath string
	// Metrics, when set, are used instead of registering the table's own
	// on Registry, and stay registered when the table closes: an owner that
	// replaces its table (another table number or protocol) registers once.
	Metrics *Metrics
}

// Table keeps the kernel's routes of our protocol equal to the learned set.
type Table struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	// ownMetrics: m was registered by New and goes with the table.
	ownMetrics bool

	mu sync.Mutex // serializes Sync and Close
	h  *netlink.Handle
	// workers are extra handles: a bulk change is spread over them so the
	// round trips to the kernel overlap.
	workers   []*netlink.Handle
	installed map[netip.Prefix]netip.Addr
	conflicts map[netip.Prefix]bool
	// keepUntil protects routes found at start with graceful restart.
	keepUntil time.Time
	seen      *dumped // the table as Drift last read it (drift.go)
	closed    bool
}

// New opens a netlink handle and sweeps the routes of our protocol left by
// an earlier run (unless graceful restart keeps them for a while).
func New(cfg Config, opts Options) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("route config: %w", err)
	}
	cfg = cfg.WithDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	handles, err := openHandles(opts.NetnsPath, 1+bulkWorkers)
	if err != nil {
		return nil, err
	}
	h := handles[0]
	// Large dumps need more than the default buffer.
	_ = h.SetSocketReceiveBufferSize(8<<20, false)
	t := &Table{
		cfg:       cfg,
		log:       opts.Logger,
		h:         h,
		workers:   handles[1:],
		installed: map[netip.Prefix]netip.Addr{},
		conflicts: map[netip.Prefix]bool{},
	}
	if opts.Metrics != nil {
		t.m = opts.Metrics.m
	} else {
		m, err := newMetrics(opts.Registry)
		if err != nil {
			t.closeHandles()
			return nil, err
		}
		t.m, t.ownMetrics = m, true
	}
	own, _, err := t.dump()
	if err != nil {
		t.unregister()
		t.closeHandles()
		return nil, err
	}
	if cfg.GracefulRestart {
		t.keepUntil = time.Now().Add(cfg.StaleAfter)
		for p, gw := range own {
			t.installed[p] = gw
		}
		if len(own) > 0 {
			t.log.Info("route: keeping routes of the previous run (graceful restart)",
				"routes", len(own), "table", cfg.Table, "protocol", cfg.Protocol, "for", cfg.StaleAfter)
		}
	} else if len(own) > 0 {
		n, err := t.deleteAll(own)
		t.log.Info("route: swept stale routes of an earlier run", "routes", n, "table", cfg.Table, "protocol", cfg.Protocol)
		if err != nil {
			t.unregister()
			t.closeHandles()
			return nil, fmt.Errorf("route: sweep: %w", err)
		}
	}
	t.m.installed.Set(float64(len(t.installed)))
	return t, nil
}

// Config is the effective config (defaults filled in).
func (t *Table) Config() Config { return t.cfg }

// dump reads the table: our routes (prefix → gateway) and the prefixes held
// by anything else. A dump interrupted by a concurrent change is retried.
func (t *Table) dump() (own map[netip.Prefix]netip.Addr, foreign map[netip.Prefix]bool, err error) {
	filter := &netlink.Route{Table: t.cfg.Table}
	for attempt := 0; ; attempt++ {
		own, foreign = map[netip.Prefix]netip.Addr{}, map[netip.Prefix]bool{}
		err = t.h.RouteListFilteredIter(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE, func(r netlink.Route) bool {
			if r.Type != unix.RTN_UNICAST && r.Type != unix.RTN_LOCAL && r.Type != unix.RTN_BLACKHOLE &&
				r.Type != unix.RTN_UNREACHABLE && r.Type != unix.RTN_PROHIBIT {
				return true
			}
			p, ok := prefixOf(r)
			if !ok {
				return true
			}
			if int(r.Protocol) == t.cfg.Protocol {
				gw, _ := netip.AddrFromSlice(r.Gw)
				own[p] = gw.Unmap()
			} else {
				foreign[p] = true
			}
			return true
		})
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("route: list table %d: %w", t.cfg.Table, err)
	}
	return own, foreign, nil
}

func prefixOf(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		if r.Family == netlink.FAMILY_V6 {
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
		}
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a, bits), true
}

func (t *Table) nl(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
		Gw:       r.Gw.AsSlice(),
		Table:    t.cfg.Table,
		Protocol: netlink.RouteProtocol(t.cfg.Protocol),
		Type:     unix.RTN_UNICAST,
	}
}

// Sync makes our routes equal to routes, comparing with what this table
// installed (no dump of the kernel table: cheap enough to run after every
// burst of BGP changes). It adds what is missing, replaces a changed next
// hop and deletes what is no longer learned. A prefix that a connected,
// local or foreign route holds is not installed: the kernel refuses the
// exclusive add, and the prefix is counted as a conflict until the next
// Reconcile. Errors are joined; every route that could be changed is.
func (t *Table) Sync(ctx context.Context, routes []Route) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("route: table closed")
	}
	t.seen = nil
	start := time.Now()
	defer func() { t.m.syncSeconds.WithLabelValues("incremental").Observe(time.Since(start).Seconds()) }()
	foreign := make(map[netip.Prefix]bool, len(t.conflicts))
	for p := range t.conflicts {
		foreign[p] = true
	}
	return t.apply(ctx, routes, t.installed, foreign)
}

// Reconcile is Sync against the kernel's table as it is (one dump): it
// repairs routes of ours changed or removed behind our back, and retries
// prefixes whose foreign route went away. Run it periodically.
func (t *Table) Reconcile(ctx context.Context, routes []Route) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("route: table closed")
	}
	t.seen = nil
	start := time.Now()
	defer func() { t.m.syncSeconds.WithLabelValues("reconcile").Observe(time.Since(start).Seconds()) }()
	own, foreign, err := t.dump()
	if err != nil {
		return err
	}
	return t.apply(ctx, routes, own, foreign)
}

// apply changes the kernel from own (our routes as known) to routes,
// leaving foreign prefixes alone.
func (t *Table) apply(ctx context.Context, routes []Route, own map[netip.Prefix]netip.Addr, foreign map[netip.Prefix]bool) error {
	want := make(map[netip.Prefix]netip.Addr, len(routes))
	var errs errList
	for _, r := range routes {
		if !r.Dst.IsValid() || !r.Gw.IsValid() || r.Dst.Addr().Is4() != r.Gw.Unmap().Is4() {
			errs.add(fmt.Errorf("route %v: invalid destination or next hop", r))
			continue
		}
		want[r.Dst.Masked()] = r.Gw.Unmap()
	}
	conflicts := map[netip.Prefix]bool{}
	var adds, replaces, dels []Route
	for p, gw := range want {
		if foreign[p] {
			conflicts[p] = true
			if !t.conflicts[p] {
				t.log.Warn("route: prefix held by a connected, local or foreign route: not installing", "prefix", p, "via", gw)
			}
			continue
		}
		switch cur, ok := own[p]; {
		case !ok:
			adds = append(adds, Route{p, gw})
		case cur != gw:
			replaces = append(replaces, Route{p, gw})
		}
	}
	keep := time.Now().Before(t.keepUntil)
	for p, gw := range own {
		if _, ok := want[p]; !ok && !keep {
			dels = append(dels, Route{p, gw})
		}
	}

	// installed is rebuilt from the dump plus what this sync changed.
	installed := make(map[netip.Prefix]netip.Addr, len(want))
	for p, gw := range own {
		installed[p] = gw
	}
	for i, err := range t.bulk(ctx, dels, t.delWith) {
		if err != nil {
			errs.add(err)
			continue
		}
		delete(installed, dels[i].Dst)
	}
	for i, err := range t.bulk(ctx, replaces, func(h *netlink.Handle, r Route) error { return h.RouteReplace(t.nl(r)) }) {
		if err != nil {
			t.m.errors.WithLabelValues("replace").Inc()
			errs.add(fmt.Errorf("replace %v: %w", replaces[i], err))
			continue
		}
		t.m.changes.WithLabelValues("replace").Inc()
		installed[replaces[i].Dst] = replaces[i].Gw
	}
	// RouteAdd is NLM_F_EXCL: it never replaces a route that appeared
	// after the dump.
	for i, err := range t.bulk(ctx, adds, func(h *netlink.Handle, r Route) error { return h.RouteAdd(t.nl(r)) }) {
		r := adds[i]
		switch {
		case errors.Is(err, syscall.EEXIST):
			conflicts[r.Dst] = true
		case err != nil:
			t.m.errors.WithLabelValues("add").Inc()
			errs.add(fmt.Errorf("add %v: %w", r, err))
		default:
			t.m.changes.WithLabelValues("add").Inc()
			installed[r.Dst] = r.Gw
		}
	}
	t.installed = installed
	t.conflicts = conflicts
	t.m.installed.Set(float64(len(t.installed)))
	t.m.conflicts.Set(float64(len(conflicts)))
	return errs.err()
}

func (t *Table) delWith(h *netlink.Handle, r Route) error {
	// The protocol in the request makes the kernel delete only a route of
	// ours, never a foreign one for the same prefix.
	if err := h.RouteDel(t.nl(r)); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.m.errors.WithLabelValues("delete").Inc()
		return fmt.Errorf("delete %v: %w", r, err)
	}
	t.m.changes.WithLabelValues("delete").Inc()
	return nil
}

func (t *Table) deleteAll(own map[netip.Prefix]netip.Addr) (int, error) {
	rs := make([]Route, 0, len(own))
	for p, gw := range own {
		rs = append(rs, Route{p, gw})
	}
	var errs errList
	n := 0
	for _, err := range t.bulk(context.Background(), rs, t.delWith) {
		if err != nil {
			errs.add(err)
			continue
		}
		n++
	}
	return n, errs.err()
}

// Installed lists our routes as last synced, sorted by prefix.
func (t *Table) Installed() []Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Route, 0, len(t.installed))
	for p, gw := range t.installed {
		out = append(out, Route{p, gw})
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c
		}
		return a.Dst.Bits() - b.Dst.Bits()
	})
	return out
}

// Conflicts lists learned prefixes not installed because another route
// holds them.
func (t *Table) Conflicts() []netip.Prefix {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]netip.Prefix, 0, len(t.conflicts))
	for p := range t.conflicts {
		out = append(out, p)
	}
	return out
}

// Close removes our routes, unless graceful restart keeps them for the
// next run, and releases the netlink handle.
func (t *Table) Close(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	defer t.closeHandles()
	defer t.unregister()
	if t.cfg.GracefulRestart {
		t.log.Info("route: keeping routes for a graceful restart", "routes", len(t.installed))
		return nil
	}
	own, _, err := t.dump()
	if err != nil {
		return err
	}
	n, err := t.deleteAll(own)
	t.log.Info("route: removed our routes", "routes", n)
	t.installed = map[netip.Prefix]netip.Addr{}
	return err
}

// errList joins at most a few errors and counts the rest: 100k failing
// routes must not make a 100k-line error.
type errList struct {
	errs []error
	more int
}

func (e *errList) add(err error) {
	if len(e.errs) < 8 {
		e.errs = append(e.errs, err)
		return
	}
	e.more++
}

func (e *errList) err() error {
	if e.more > 0 {
		e.errs = append(e.errs, fmt.Errorf("and %d more errors", e.more))
	}
	return errors.Join(e.errs...)
}

// InstalledCount is how many routes of ours are in the kernel, without
// copying them.
func (t *Table) InstalledCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.installed)
}

// unregister drops the table's metrics unless an owner shares them.
func (t *Table) unregister() {
	if t.ownMetrics {
		t.m.unregister()
	}
}
