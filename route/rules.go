package route

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkRule sends the connections an edge marked for one link into the
// link's own table (config.LinkPath): by the packets' TOS on the way out,
// and by the connection mark on the way back, since the replies of an
// origin carry no DSCP of their own.
type LinkRule struct {
	Name  string // the link, for logs and errors
	TOS   int    // IPv4 TOS / IPv6 traffic class byte of the marked packets
	Mark  uint32 // connection mark of the link's connections
	Table int    // the link's table
}

// RulesConfig says how link rules are installed.
type RulesConfig struct {
	// Priority of the rules (`ip rule` pref); before main's 32766.
	Priority int
	// Protocol marks our rules (FRA_PROTOCOL), as Config.Protocol our
	// routes: only they are swept and removed (0: DefaultProtocol).
	Protocol int
	// MarkMask is the part of the packet and connection mark the rules
	// own; other bits are left to others.
	MarkMask uint32
	// NftTable is the nftables table (family inet) that sets the
	// connection marks; it is replaced whole on every Sync.
	NftTable string
	// NetnsPath installs into another network namespace; empty means the
	// current one. The nft command is then run through nsenter.
	NetnsPath string
}

// Rules keeps the kernel's link rules (ours by protocol) and the nftables
// table of connection marks equal to the wanted set.
type Rules struct {
	cfg RulesConfig
	mu  sync.Mutex
	h   *netlink.Handle
	cur []LinkRule // as last synced
}

// NewRules opens a netlink handle and sweeps the rules and the nftables
// table an earlier run left.
func NewRules(cfg RulesConfig) (*Rules, error) {
	if cfg.Protocol == 0 {
		cfg.Protocol = DefaultProtocol
	}
	if cfg.Protocol < 5 || cfg.Protocol > 255 {
		return nil, fmt.Errorf("route: rules: protocol %d: want 5..255", cfg.Protocol)
	}
	if cfg.Priority <= 0 || cfg.Priority >= 32766 {
		return nil, fmt.Errorf("route: rules: priority %d: want 1..32765 (before the main table)", cfg.Priority)
	}
	if cfg.NftTable == "" || strings.ContainsFunc(cfg.NftTable, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		return nil, fmt.Errorf("route: rules: nftables table %q: want [a-z0-9_]+", cfg.NftTable)
	}
	hs, err := openHandles(cfg.NetnsPath, 1)
	if err != nil {
		return nil, err
	}
	r := &Rules{cfg: cfg, h: hs[0]}
	if err := r.apply(nil); err != nil {
		r.h.Close()
		return nil, fmt.Errorf("route: rules: sweep: %w", err)
	}
	return r, nil
}

// validate refuses what the kernel would take for another selector.
func (lr LinkRule) validate(mask uint32) error {
	switch {
	// `ip rule tos` compares only the old TOS bits 0x1c.
	case lr.TOS&^0x1c != 0 || lr.TOS == 0:
		return fmt.Errorf("link %s: TOS %#x: want a non-zero value of the bits 0x1c", lr.Name, lr.TOS)
	case lr.Mark == 0 || lr.Mark&^mask != 0 && mask != 0:
		return fmt.Errorf("link %s: mark %#x outside the mask %#x", lr.Name, lr.Mark, mask)
	case lr.Table <= 0 || lr.Table == MainTable || lr.Table == 253 || lr.Table == 255:
		return fmt.Errorf("link %s: table %d: not a table of its own", lr.Name, lr.Table)
	}
	return nil
}

// Sync installs rules (and nothing else of ours): for each link, in
// IPv4 and IPv6, a rule on the TOS and one on the mark, both to the
// link's table, and the nftables table that marks connections by the
// DSCP of their first packets and copies the mark to their replies. A
// packet whose link table has no route for it goes on to the next rule:
// the main table, as unmarked traffic.
func (r *Rules) Sync(rules []LinkRule) error {
	var errs []error
	for _, lr := range rules {
		if err := lr.validate(r.mask()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("route: rules: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return errors.New("route: rules: closed")
	}
	if slices.Equal(r.cur, rules) {
		return nil
	}
	if err := r.apply(rules); err != nil {
		return fmt.Errorf("route: rules: %w", err)
	}
	r.cur = slices.Clone(rules)
	return nil
}

// Reconcile puts back the rules and the nftables table as last synced
// when the kernel holds something else (a rule deleted or added by hand,
// the table flushed); true when it had to. Run it periodically.
func (r *Rules) Reconcile() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return false, errors.New("route: rules: closed")
	}
	ok, err := r.matches(r.cur)
	if err != nil {
		return false, fmt.Errorf("route: rules: %w", err)
	}
	if ok {
		return false, nil
	}
	if err := r.apply(r.cur); err != nil {
		return true, fmt.Errorf("route: rules: %w", err)
	}
	return true, nil
}

// matches: the kernel's rules of our protocol are exactly those of
// rules, and the nftables table exists when there are rules.
func (r *Rules) matches(rules []LinkRule) (bool, error) {
	want := map[string]bool{}
	for _, lr := range rules {
		for _, x := range r.nl(lr) {
			want[ruleKey(x)] = true
		}
	}
	have := map[string]bool{}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		xs, err := r.h.RuleListFiltered(fam, &netlink.Rule{Protocol: uint8(r.cfg.Protocol)}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			if fam == netlink.FAMILY_V6 && errors.Is(err, unix.EAFNOSUPPORT) {
				for k := range want {
					if strings.HasPrefix(k, strconv.Itoa(netlink.FAMILY_V6)+"/") {
						delete(want, k)
					}
				}
				continue
			}
			return false, fmt.Errorf("list rules: %w", err)
		}
		for i := range xs {
			if int(xs[i].Protocol) == r.cfg.Protocol {
				have[ruleKey(&xs[i])] = true
			}
		}
	}
	if !maps.Equal(want, have) {
		return false, nil
	}
	if len(rules) == 0 {
		return true, nil
	}
	return r.nftExists(), nil
}

// ruleKey is what tells our rules apart.
func ruleKey(x *netlink.Rule) string {
	var mask uint32
	if x.Mask != nil {
		mask = *x.Mask
	}
	if x.Mark == 0 {
		mask = 0
	}
	return fmt.Sprintf("%d/%d/%d/%#x/%#x/%#x", x.Family, x.Priority, x.Table, x.Tos, x.Mark, mask)
}

// nftExists: the nftables table is there.
func (r *Rules) nftExists() bool {
	prog, args := "nft", []string{"list", "table", "inet", r.cfg.NftTable}
	if r.cfg.NetnsPath != "" {
		prog, args = "nsenter", append([]string{"--net=" + r.cfg.NetnsPath, "--", "nft"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, prog, args...).Run() == nil
}

// Installed is the rules as last synced.
func (r *Rules) Installed() []LinkRule {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cur)
}

// Close removes our rules and the nftables table.
func (r *Rules) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return nil
	}
	err := r.apply(nil)
	r.h.Close()
	r.h, r.cur = nil, nil
	if err != nil {
		return fmt.Errorf("route: rules: remove: %w", err)
	}
	return nil
}

func (r *Rules) mask() uint32 {
	if r.cfg.MarkMask == 0 {
		return 0xffffffff
	}
	return r.cfg.MarkMask
}

// nl is the kernel rules of lr.
func (r *Rules) nl(lr LinkRule) []*netlink.Rule {
	var out []*netlink.Rule
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		tos := netlink.NewRule()
		tos.Family, tos.Priority, tos.Table, tos.Tos, tos.Protocol = fam, r.cfg.Priority, lr.Table, uint(lr.TOS), uint8(r.cfg.Protocol)
		mark := netlink.NewRule()
		m := r.mask()
		mark.Family, mark.Priority, mark.Table, mark.Mark, mark.Mask, mark.Protocol = fam, r.cfg.Priority, lr.Table, lr.Mark, &m, uint8(r.cfg.Protocol)
		out = append(out, tos, mark)
	}
	return out
}

// apply replaces our rules with those of rules: the old ones of our
// protocol go (whatever they were), then the new ones are added, then
// the nftables table is replaced in one transaction.
func (r *Rules) apply(rules []LinkRule) error {
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		have, err := r.h.RuleListFiltered(fam, &netlink.Rule{Protocol: uint8(r.cfg.Protocol)}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			errs = append(errs, fmt.Errorf("list rules: %w", err))
			continue
		}
		for _, x := range have {
			if int(x.Protocol) != r.cfg.Protocol {
				continue
			}
			x := x
			if err := r.h.RuleDel(&x); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("delete rule %v: %w", x, err))
			}
		}
	}
	for _, lr := range rules {
		for _, x := range r.nl(lr) {
			if err := r.h.RuleAdd(x); err != nil && !errors.Is(err, syscall.EEXIST) {
				if x.Family == netlink.FAMILY_V6 && errors.Is(err, unix.EAFNOSUPPORT) {
					continue // a host without IPv6
				}
				errs = append(errs, fmt.Errorf("link %s: add rule (family %d): %w", lr.Name, x.Family, err))
			}
		}
	}
	if err := r.nft(rules); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// nftScript is the nftables transaction that replaces the table: the
// original direction of a connection takes the mark of its DSCP (when
// it is a link's), and its replies take the connection's mark, which
// the rules on the mark route to the link's table.
func (r *Rules) nftScript(rules []LinkRule) string {
	var b bytes.Buffer
	t := "inet " + r.cfg.NftTable
	// Adding first makes the delete succeed whether or not it existed.
	fmt.Fprintf(&b, "add table %s\ndelete table %s\n", t, t)
	if len(rules) == 0 {
		return b.String()
	}
	var elems []string
	for _, lr := range rules {
		elems = append(elems, fmt.Sprintf("%d : %#x", lr.TOS>>2, lr.Mark))
	}
	m := strings.Join(elems, ", ")
	fmt.Fprintf(&b, "table %s {\n", t)
	fmt.Fprintf(&b, "\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n")
	fmt.Fprintf(&b, "\t\tct direction original ct mark set ip dscp map { %s }\n", m)
	fmt.Fprintf(&b, "\t\tct direction original ct mark set ip6 dscp map { %s }\n", m)
	fmt.Fprintf(&b, "\t\tct direction reply ct mark and %#x != 0 meta mark set ct mark and %#x\n", r.mask(), r.mask())
	fmt.Fprintf(&b, "\t}\n}\n")
	return b.String()
}

func (r *Rules) nft(rules []LinkRule) error {
	args := []string{"-f", "-"}
	prog := "nft"
	if r.cfg.NetnsPath != "" {
		prog, args = "nsenter", append([]string{"--net=" + r.cfg.NetnsPath, "--", "nft"}, args...)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		if len(rules) == 0 {
			return nil // nothing to remove without nft either
		}
		return fmt.Errorf("nftables: %w (install the nftables package: replies over a link are routed by the connection mark it sets)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = strings.NewReader(r.nftScript(rules))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nftables table %s: %w: %s", r.cfg.NftTable, err, bytes.TrimSpace(out))
	}
	return nil
}

// String is the rules of lr as `ip rule` shows them, for logs.
func (lr LinkRule) String() string {
	return lr.Name + ": tos " + strconv.FormatInt(int64(lr.TOS), 16) + " / fwmark " + strconv.FormatUint(uint64(lr.Mark), 16) + " lookup " + strconv.Itoa(lr.Table)
}
