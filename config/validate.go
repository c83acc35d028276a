package config

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Validate runs the semantic checks over a rendered snapshot: the ones Load
// and Render run too, minus positions. The controller uses it on snapshots
// that did not come from files (store, promote). The error is an
// *ErrorList naming "site" or "distribution <name>" instead of a file.
func (s *Snapshot) Validate() error {
	c := &checker{}
	c.check(s)
	return c.errs.err()
}

// checker collects semantic errors; with locs it points each at the
// position of the field in its file.
type checker struct {
	locs     map[string]*decoder // "site", "distribution <name>"
	tolerant bool
	errs     ErrorList
}

func (c *checker) errf(obj, path, format string, args ...any) {
	e := &Error{File: obj, Field: path, Msg: fmt.Sprintf(format, args...)}
	if d := c.locs[obj]; d != nil {
		for p := path; ; p = parentPath(p) {
			if d.bad[p] {
				return
			}
			if p == "" {
				break
			}
		}
		e.File = d.file
		e.Msg += d.note(path)
		for p := path; ; p = parentPath(p) {
			if ps, ok := d.pos[p]; ok {
				e.Line, e.Column = ps.Line, ps.Col
				break
			}
			if p == "" {
				break
			}
		}
	}
	c.errs = append(c.errs, e)
}

// parentPath strips the last .key or [i] of a field path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// skip reports a value that still holds an unresolved parameter (load time
// only): its check waits for Render.
func (c *checker) skip(s string) bool { return c.tolerant && hasParam(s) }

var (
	objNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$`)
	tokenRE   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	keyRE     = regexp.MustCompile(`^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$`)
	labelRE   = regexp.MustCompile(`^([a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?)$`)
)

func (c *checker) name(obj, path, kind, v string) bool {
	switch {
	case v == "":
		c.errf(obj, path, "%s name missing", kind)
	case !objNameRE.MatchString(v):
		c.errf(obj, path, "invalid %s name %q (letters, digits, '-', '_' and '.')", kind, v)
	default:
		return true
	}
	return false
}

// hostname checks a DNS name without a trailing dot (aliases, hosts).
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// hostPort checks host:port; the host is an IP or a name, the port a number.
func hostPort(s string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("invalid address %q (want host:port such as 127.0.0.1:8080)", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", s)
	}
	if h != "" {
		if _, err := netip.ParseAddr(h); err != nil && !validHostname(strings.ToLower(h)) {
			return "", 0, fmt.Errorf("invalid host in %q", s)
		}
	}
	return h, n, nil
}

func (c *checker) check(s *Snapshot) {
	c.site(&s.Site)
	c.listeners(&s.Site)
	c.distributions(s)
	c.imports(s)
}

func (c *checker) location(obj, path string, l Location) {
	if l.Lat < -90 || l.Lat > 90 {
		c.errf(obj, path+".lat", "latitude %v out of range -90..90", l.Lat)
	}
	if l.Lon < -180 || l.Lon > 180 {
		c.errf(obj, path+".lon", "longitude %v out of range -180..180", l.Lon)
	}
	if l.Country != "" && (len(l.Country) != 2 || strings.ToUpper(l.Country) != l.Country) {
		c.errf(obj, path+".country", "country %q is not an ISO 3166 two-letter code such as KR", l.Country)
	}
}

func (c *checker) prefix(obj, path string, p netip.Prefix) bool {
	if !p.IsValid() {
		c.errf(obj, path, "missing CIDR")
		return false
	}
	if p != p.Masked() {
		c.errf(obj, path, "%s has host bits set (did you mean %s?)", p, p.Masked())
		return false
	}
	return true
}

func (c *checker) site(s *Site) {
	const o = "site"
	if c.locs == nil { // files check the name in their header
		if s.Name == "" || !nameRE.MatchString(s.Name) {
			c.errf(o, "name", "invalid site name %q", s.Name)
		}
	}
	for i, e := range s.Store.Endpoints {
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			c.errf(o, fmt.Sprintf("store.endpoints[%d]", i), "endpoint %q must be a URL such as http://10.0.0.1:2379", e)
		}
	}
	for _, f := range []struct{ path, v string }{
		{"store.listen", s.Store.Listen}, {"store.peer", s.Store.Peer}, {"controller.admin", s.Controller.Admin},
	} {
		if f.v != "" && !c.skip(f.v) {
			if _, _, err := hostPort(f.v); err != nil {
				c.errf(o, f.path, "%v", err)
			}
		}
	}
	if s.Store.History.Keep < 0 {
		c.errf(o, "store.history.keep", "%d: want at least 1", s.Store.History.Keep)
	}
	if s.Store.History.KeepFor < 0 {
		c.errf(o, "store.history.keepFor", "negative")
	}
	if s.Store.LeaseTTL != 0 && s.Store.LeaseTTL.D() < 1e9 {
		c.errf(o, "store.leaseTTL", "must be at least 1s")
	}
	c.rollout(s)
	c.drift(s)
	c.dns(s)
	c.clouds(s)
	c.nodes(s)
	c.links(s)
	c.linkPaths(s)
}

func (c *checker) dns(s *Site) {
	const o = "site"
	z := s.DNS.Zone
	switch {
	case z == "":
		c.errf(o, "dns.zone", "missing (the zone the DNS role serves, e.g. cdn.example.test.)")
	case !strings.HasSuffix(z, "."):
		c.errf(o, "dns.zone", "zone %q must end with '.' (fully qualified: %q)", z, z+".")
	case !validHostname(strings.TrimSuffix(z, ".")):
		c.errf(o, "dns.zone", "invalid zone %q (lowercase DNS labels)", z)
	}
	if s.DNS.MaxAnswers < 0 {
		c.errf(o, "dns.maxAnswers", "must not be negative")
	}
	for i, ns := range s.DNS.Nameservers {
		if !strings.HasSuffix(ns, ".") || !validHostname(strings.TrimSuffix(ns, ".")) {
			c.errf(o, fmt.Sprintf("dns.nameservers[%d]", i), "invalid nameserver %q (a fully qualified name ending with '.')", ns)
		}
	}
	for i, n := range s.DNS.Networks {
		p := fmt.Sprintf("dns.networks[%d]", i)
		c.prefix(o, p+".cidr", n.CIDR)
		c.location(o, p+".location", n.Location)
	}
}

func (c *checker) clouds(s *Site) {
	const o = "site"
	names := map[string]int{}
	asns := map[uint32]string{}
	type owned struct {
		p     netip.Prefix
		cloud string
		path  string
		order int
	}
	var all []owned
	for i, cl := range s.Clouds {
		p := fmt.Sprintf("clouds[%d]", i)
		if c.name(o, p+".name", "cloud", cl.Name) {
			if j, dup := names[cl.Name]; dup {
				c.errf(o, p+".name", "duplicate cloud %q (also clouds[%d])", cl.Name, j)
			}
			names[cl.Name] = i
		}
		if cl.ASN == 0 {
			c.errf(o, p+".asn", "missing ASN (each cloud needs its own, e.g. 65001)")
		} else if other, dup := asns[cl.ASN]; dup {
			c.errf(o, p+".asn", "ASN %d is already used by cloud %q; eBGP between clouds needs distinct ASNs", cl.ASN, other)
		} else {
			asns[cl.ASN] = cl.Name
		}
		for j, pr := range cl.CIDRs {
			pp := fmt.Sprintf("%s.cidrs[%d]", p, j)
			if c.prefix(o, pp, pr) {
				all = append(all, owned{pr, cl.Name, pp, len(all)})
			}
		}
	}
	// Prefixes are aligned blocks: two overlap only when one holds the
	// other. Sorted by address (shorter first), a stack of the blocks
	// that hold the current one finds every overlap in n log n; each is
	// reported on the prefix written later.
	slices.SortFunc(all, func(a, b owned) int {
		return cmp.Or(a.p.Addr().Compare(b.p.Addr()), cmp.Compare(a.p.Bits(), b.p.Bits()))
	})
	var stack []owned
	reported := map[string]bool{}
	for _, x := range all {
		for len(stack) > 0 && !stack[len(stack)-1].p.Overlaps(x.p) {
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			a, b := stack[len(stack)-1], x
			if a.order > b.order {
				a, b = b, a
			}
			if !reported[b.path] {
				reported[b.path] = true
				c.errf(o, b.path, "%s overlaps %s of cloud %q", b.p, a.p, a.cloud)
			}
		}
		stack = append(stack, x)
	}
}

func (c *checker) nodes(s *Site) {
	const o = "site"
	names := map[string]int{}
	clouds := map[string]bool{}
	for _, cl := range s.Clouds {
		clouds[cl.Name] = true
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		p := fmt.Sprintf("nodes[%d]", i)
		if c.name(o, p+".name", "node", n.Name) {
			if j, dup := names[n.Name]; dup {
				c.errf(o, p+".name", "duplicate node %q (also nodes[%d])", n.Name, j)
			}
			names[n.Name] = i
		}
		switch {
		case n.Cloud == "":
			c.errf(o, p+".cloud", "missing (the cloud this node runs in)")
		case !clouds[n.Cloud]:
			c.errf(o, p+".cloud", "unknown cloud %q", n.Cloud)
		}
		if len(n.Roles) == 0 {
			c.errf(o, p+".roles", "no roles (want some of edge, dns, gateway, origin)")
		}
		roles := map[Role]bool{}
		for j, r := range n.Roles {
			rp := fmt.Sprintf("%s.roles[%d]", p, j)
			switch {
			case roles[r]:
				c.errf(o, rp, "role %q listed twice", r)
			case r != RoleEdge && r != RoleDNS && r != RoleGateway && r != RoleOrigin:
				c.errf(o, rp, "unknown role %q (want edge, dns, gateway or origin)", r)
			}
			roles[r] = true
		}
		if n.Address != "" && !c.skip(n.Address) {
			if _, err := netip.ParseAddr(n.Address); err != nil {
				c.errf(o, p+".address", "invalid IP address %q", n.Address)
			}
		}
		for _, l := range []struct{ key, v string }{
			{"http", n.Listen.HTTP}, {"https", n.Listen.HTTPS}, {"dns", n.Listen.DNS}, {"admin", n.Listen.Admin},
		} {
			if l.v != "" && !c.skip(l.v) {
				if _, _, err := hostPort(l.v); err != nil {
					c.errf(o, p+".listen."+l.key, "%v", err)
				}
			}
		}
		if roles[RoleEdge] {
			if n.Listen.HTTP == "" && n.Listen.HTTPS == "" {
				c.errf(o, p+".listen", "an edge needs listen.http or listen.https")
			}
			if n.Address == "" {
				c.errf(o, p+".address", "an edge needs the address DNS hands out (or a specific listen.http address)")
			}
		}
		if roles[RoleDNS] && n.Listen.DNS == "" {
			c.errf(o, p+".listen", "a dns node needs listen.dns")
		}
		if n.Weight != nil && (*n.Weight < 0 || *n.Weight > 100) {
			c.errf(o, p+".weight", "weight %d out of range 0..100", *n.Weight)
		}
		if n.Cache.Memory < 0 || n.Cache.MaxObject < 0 || n.Cache.Slice < 0 {
			c.errf(o, p+".cache", "sizes must not be negative")
		}
		c.accessLog(o, p, n, roles[RoleEdge])
		if d := n.Cache.Disk; d != nil {
			if !filepath.IsAbs(d.Path) {
				c.errf(o, p+".cache.disk.path", "must be an absolute directory, got %q", d.Path)
			}
			if d.Size <= 0 {
				c.errf(o, p+".cache.disk.size", "must be positive (e.g. 20GiB)")
			}
			if n.Cache.Slice > 0 && d.Size > 0 && n.Cache.Slice > d.Size {
				c.errf(o, p+".cache.slice", "%s is larger than the disk tier (%s)", n.Cache.Slice, d.Size)
			}
		}
		c.location(o, p+".location", n.Location)
		c.gateway(o, p, n, roles[RoleGateway])
		switch {
		case roles[RoleOrigin] && n.Origin == nil:
			c.errf(o, p+".origin", "an origin node needs origin: {root: DIR, listen: ADDR}")
		case !roles[RoleOrigin] && n.Origin != nil:
			c.errf(o, p+".origin", "origin settings on a node without the origin role")
		case n.Origin != nil:
			if n.Origin.Root == "" {
				c.errf(o, p+".origin.root", "missing (the directory with the content)")
			}
			if n.Origin.Listen == "" {
				c.errf(o, p+".origin.listen", "missing (host:port)")
			} else if _, _, err := hostPort(n.Origin.Listen); err != nil {
				c.errf(o, p+".origin.listen", "%v", err)
			}
			for j, r := range n.Origin.CacheRules {
				if r.Path == "" || r.CacheControl == "" {
					c.errf(o, fmt.Sprintf("%s.origin.cacheRules[%d]", p, j), "needs path and cacheControl")
				}
			}
		}
	}
}

// Bounds of an access log's buffer: a line fits in the smallest, and the
// largest keeps the (at most 10) buffers of a node well under its cache.
const (
	minAccessLogBuffer = 4 << 10
	maxAccessLogBuffer = 16 << 20
)

func (c *checker) accessLog(o, p string, n *Node, edge bool) {
	a := n.AccessLog
	if a == nil {
		return
	}
	p += ".accessLog"
	if !edge {
		c.errf(o, p, "access log settings on a node without the edge role")
		return
	}
	if a.Path == "" {
		c.errf(o, p+".path", "missing (a file, stderr, stdout or off)")
	}
	if a.Format != "" && a.Format != "json" && a.Format != "combined" {
		c.errf(o, p+".format", "unknown format %q (want json or combined)", a.Format)
	}
	if a.Buffer != 0 && (a.Buffer < minAccessLogBuffer || a.Buffer > maxAccessLogBuffer) {
		c.errf(o, p+".buffer", "%d bytes out of range 4KiB..16MiB", a.Buffer)
	}
	if a.Flush < 0 {
		c.errf(o, p+".flush", "must not be negative")
	}
	if a.Sample < 0 || a.Sample > 1 {
		c.errf(o, p+".sample", "%v out of range (0, 1] (turn the log off with path: off)", a.Sample)
	}
}

func (c *checker) gateway(o, p string, n *Node, role bool) {
	g := n.Gateway
	switch {
	case role && g == nil:
		c.errf(o, p+".gateway", "a gateway node needs gateway: {routerId: IPv4}")
		return
	case !role && g != nil:
		c.errf(o, p+".gateway", "gateway settings on a node without the gateway role")
		return
	case g == nil:
		return
	}
	p += ".gateway"
	if !g.RouterID.Is4() {
		c.errf(o, p+".routerId", "missing or not IPv4 (BGP router IDs are IPv4)")
	}
	if g.ListenPort < -1 || g.ListenPort > 65535 {
		c.errf(o, p+".bgpPort", "port %d out of range (-1 turns listening off)", g.ListenPort)
	}
	if g.Table < 0 {
		c.errf(o, p+".table", "must not be negative")
	}
	if g.Protocol < 0 || g.Protocol > 255 {
		c.errf(o, p+".protocol", "route protocol %d out of range 0..255", g.Protocol)
	}
	// Checked here rather than left to the speaker: links without their
	// own holdTime inherit this one.
	if g.HoldTime != 0 && g.HoldTime.D() < 3e9 {
		c.errf(o, p+".holdTime", "BGP hold time must be at least 3s")
	}
	if w := g.Wireguard; w != nil {
		if w.PrivateKeyFile == "" {
			c.errf(o, p+".wireguard.privateKeyFile", "missing (made by `intercloud keygen`)")
		}
		if w.ListenPort < 0 || w.ListenPort > 65535 {
			c.errf(o, p+".wireguard.listenPort", "port %d out of range", w.ListenPort)
		}
		if w.MTU != 0 && (w.MTU < 1280 || w.MTU > 9000) {
			c.errf(o, p+".wireguard.mtu", "MTU %d out of range 1280..9000", w.MTU)
		}
	}
	names := map[string]bool{}
	for j, x := range g.Neighbors {
		np := fmt.Sprintf("%s.neighbors[%d]", p, j)
		if c.name(o, np+".name", "neighbor", x.Name) {
			if names[x.Name] {
				c.errf(o, np+".name", "duplicate neighbor %q", x.Name)
			}
			names[x.Name] = true
		}
		if !x.Address.IsValid() {
			c.errf(o, np+".address", "missing")
		}
		if x.ASN == 0 {
			c.errf(o, np+".asn", "missing")
		}
		for k, pr := range x.Prefixes {
			c.prefix(o, fmt.Sprintf("%s.prefixes[%d]", np, k), pr)
		}
	}
}

func (c *checker) links(s *Site) {
	const o = "site"
	nodes := nodeIndex(s)
	names := map[string]int{}
	for i, l := range s.Links {
		p := fmt.Sprintf("links[%d]", i)
		if c.name(o, p+".name", "link", l.Name) {
			if j, dup := names[l.Name]; dup {
				c.errf(o, p+".name", "duplicate link %q (also links[%d])", l.Name, j)
			}
			names[l.Name] = i
		}
		if l.Kind != LinkDedicated && l.Kind != LinkVPN {
			c.errf(o, p+".kind", "kind %q: want dedicated or vpn", l.Kind)
		}
		var ends [2]*Node
		for k, e := range []LinkEnd{l.A, l.B} {
			ep := p + "." + []string{"a", "b"}[k]
			switch n := nodes[e.Node]; {
			case e.Node == "":
				c.errf(o, ep+".node", "missing")
			case n == nil:
				c.errf(o, ep+".node", "unknown node %q", e.Node)
			case !n.HasRole(RoleGateway):
				c.errf(o, ep+".node", "node %q is not a gateway (links join gateway nodes)", e.Node)
			default:
				ends[k] = n
			}
			switch l.Kind {
			case LinkDedicated:
				if !e.Address.IsValid() {
					c.errf(o, ep+".address", "a dedicated link needs each side's address")
				}
			case LinkVPN:
				if e.Endpoint == "" {
					c.errf(o, ep+".endpoint", "a vpn link needs each side's public endpoint host:port")
				} else if _, port, err := hostPort(e.Endpoint); err != nil {
					c.errf(o, ep+".endpoint", "%v", err)
				} else if port == 0 {
					c.errf(o, ep+".endpoint", "endpoint %q needs a port", e.Endpoint)
				}
				if !e.Tunnel.IsValid() {
					c.errf(o, ep+".tunnel", "a vpn link needs each side's tunnel address with its length, e.g. 100.64.0.1/30")
				}
				if e.PublicKey == "" {
					c.errf(o, ep+".publicKey", "a vpn link needs each side's WireGuard public key (intercloud keygen)")
				} else if !validKey(e.PublicKey) {
					c.errf(o, ep+".publicKey", "not a WireGuard key (44 characters of base64)")
				}
				if n := ends[k]; n != nil && n.Gateway != nil && n.Gateway.Wireguard == nil {
					c.errf(o, ep+".node", "node %q has a vpn link but no gateway.wireguard settings", n.Name)
				}
			}
		}
		if l.A.Node != "" && l.A.Node == l.B.Node {
			c.errf(o, p+".b.node", "both ends are node %q", l.A.Node)
		} else if ends[0] != nil && ends[1] != nil && ends[0].Cloud == ends[1].Cloud {
			c.errf(o, p+".b.node", "both ends are in cloud %q (links join clouds)", ends[0].Cloud)
		}
		switch l.Kind {
		case LinkDedicated:
			if l.A.Address.IsValid() && l.B.Address.IsValid() {
				if l.A.Address == l.B.Address {
					c.errf(o, p+".b.address", "same address as side a")
				} else if l.A.Address.Is4() != l.B.Address.Is4() {
					c.errf(o, p+".b.address", "side a and b use different address families")
				}
			}
		case LinkVPN:
			a, b := l.A.Tunnel, l.B.Tunnel
			if a.IsValid() && b.IsValid() {
				if a.Masked() != b.Masked() {
					c.errf(o, p+".b.tunnel", "%s is not in the same network as side a's %s", b, a)
				} else if a.Addr() == b.Addr() {
					c.errf(o, p+".b.tunnel", "same tunnel address as side a")
				}
			}
		}
		if l.MTU != 0 && (l.MTU < 1280 || l.MTU > 9000) {
			c.errf(o, p+".mtu", "MTU %d out of range 1280..9000", l.MTU)
		}
		if l.Keepalive != 0 && l.HoldTime != 0 && l.Keepalive >= l.HoldTime {
			c.errf(o, p+".keepalive", "keepalive %s must be shorter than holdTime %s", l.Keepalive, l.HoldTime)
		}
		if l.HoldTime != 0 && l.HoldTime.D() < 3e9 {
			c.errf(o, p+".holdTime", "BGP hold time must be at least 3s")
		}
	}
}

// nodeIndex maps node names to nodes (the first of duplicates), so checks
// stay linear on large sites.
func nodeIndex(s *Site) map[string]*Node {
	m := make(map[string]*Node, len(s.Nodes))
	for i := range s.Nodes {
		if _, dup := m[s.Nodes[i].Name]; !dup {
			m[s.Nodes[i].Name] = &s.Nodes[i]
		}
	}
	return m
}

// validKey checks a base64 WireGuard key: 32 bytes.
func validKey(s string) bool {
	return keyRE.MatchString(s)
}

// listeners reports two services of the site set to listen on the same
// host:port. Wildcard hosts (0.0.0.0, ::, empty) and port 0 are left out:
// on separate machines they do not collide, and we cannot tell.
func (c *checker) listeners(s *Site) {
	const o = "site"
	owner := map[netip.AddrPort]string{}
	add := func(path, v, who string) {
		if v == "" || c.skip(v) {
			return
		}
		h, port, err := hostPort(v)
		if err != nil || port == 0 {
			return
		}
		a, err := netip.ParseAddr(h)
		if err != nil || a.IsUnspecified() {
			return
		}
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		if prev, dup := owner[ap]; dup {
			c.errf(o, path, "%s is already used by %s", v, prev)
			return
		}
		owner[ap] = who + " (" + path + ")"
	}
	if len(s.Store.Endpoints) == 0 { // an embedded store listens itself
		add("store.listen", s.Store.Listen, "the store")
		add("store.peer", s.Store.Peer, "the store")
	}
	add("controller.admin", s.Controller.Admin, "the controller")
	for i, n := range s.Nodes {
		p := fmt.Sprintf("nodes[%d]", i)
		who := "node " + n.Name
		add(p+".listen.http", n.Listen.HTTP, who)
		add(p+".listen.https", n.Listen.HTTPS, who)
		add(p+".listen.dns", n.Listen.DNS, who)
		add(p+".listen.admin", n.Listen.Admin, who)
		if n.Origin != nil {
			add(p+".origin.listen", n.Origin.Listen, who)
		}
	}
}

func (c *checker) rollout(s *Site) {
	const o = "site"
	r := &s.Rollout
	for i, st := range r.Stages {
		path := fmt.Sprintf("rollout.stages[%d]", i)
		kinds := 0
		for _, set := range []bool{st.Canary, st.Nodes != 0, st.Percent != 0} {
			if set {
				kinds++
			}
		}
		switch {
		case kinds != 1:
			c.errf(o, path, "set exactly one of canary, nodes and percent")
		case st.Nodes < 0:
			c.errf(o, path+".nodes", "%d: want at least 1", st.Nodes)
		case st.Percent < 0 || st.Percent > 100:
			c.errf(o, path+".percent", "%d: want 1 to 100", st.Percent)
		}
	}
	if n := len(r.Stages); n > 0 && r.Stages[n-1].Percent != 100 {
		c.errf(o, fmt.Sprintf("rollout.stages[%d]", n-1), "the last stage must reach every node: {percent: 100}")
	}
	if r.Bake < 0 {
		c.errf(o, "rollout.bake", "negative")
	}
	if r.ApplyTimeout < 0 {
		c.errf(o, "rollout.applyTimeout", "negative")
	}
	for i, n := range r.Canary.Nodes {
		if s.Node(n) == nil {
			c.errf(o, fmt.Sprintf("rollout.canary.nodes[%d]", i), "no node %q in the site", n)
		}
	}
	for i, cl := range r.Canary.Clouds {
		if s.Cloud(cl) == nil {
			c.errf(o, fmt.Sprintf("rollout.canary.clouds[%d]", i), "no cloud %q in the site", cl)
		}
	}
	g := r.Gates
	for _, f := range []struct {
		path string
		v    float64
	}{{"max5xxPercent", g.Max5xxPercent}, {"maxOriginErrorPercent", g.MaxOriginErrorPercent}, {"maxServfailPercent", g.MaxServfailPercent}} {
		if f.v < 0 || f.v > 100 {
			c.errf(o, "rollout.gates."+f.path, "%g: want 0 to 100", f.v)
		}
	}
	if g.MinRequests < 0 {
		c.errf(o, "rollout.gates.minRequests", "negative")
	}
}
