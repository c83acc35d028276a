package dns

import (
	"context"
	"fmt"

	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/intercloud/intercloud/config"
)

// tc is one question and the answer it must get, CoreDNS style: every
// case runs against the handler in process, and the cases whose client is
// 127.0.0.1 also run over real UDP and TCP against a listening server.
type tc struct {
	name   string
	qname  string
	qtype  uint16
	qclass uint16
	client string // the resolver's address (default 127.0.0.1)
	ecs    string // EDNS Client Subnet prefix sent, if any
	edns   bool

	rcode  int
	noAA   bool
	answer []string // "name TYPE rdata", any order; exact set
	// anyOf, when set, means: answer has nAnswers records, all from anyOf.
	anyOf    []string
	nAnswers int
	ns       []string
	extra    []string
	scope    int // expected ECS scope (checked when ecs is set)
}

const wantSOA = "ns1.cdn.example.test. hostmaster.cdn.example.test. 42 3600 600 604800 5"

var (
	soaNS    = []string{"cdn.example.test. SOA " + wantSOA}
	shopKR   = []string{"shop.cdn.example.test. A 127.0.1.1", "shop.cdn.example.test. A 127.0.1.2"}
	shopJP   = []string{"shop.cdn.example.test. A 127.0.2.1"}
	shopUS   = []string{"shop.cdn.example.test. A 127.0.3.1"}
	shopDE   = []string{"shop.cdn.example.test. A 127.0.4.1"}
	allLive4 = []string{"shop.cdn.example.test. A 127.0.1.1", "shop.cdn.example.test. A 127.0.1.2",
		"shop.cdn.example.test. A 127.0.2.1", "shop.cdn.example.test. A 127.0.3.1", "shop.cdn.example.test. A 127.0.4.1"}
)

var cases = []tc{
	{name: "soa", qname: zone, qtype: mdns.TypeSOA, answer: []string{"cdn.example.test. SOA " + wantSOA}},
	{name: "ns with glue", qname: zone, qtype: mdns.TypeNS, answer: []string{"cdn.example.test. NS ns1.cdn.example.test."},
		extra: []string{"ns1.cdn.example.test. A 127.0.0.53"}},
	{name: "nameserver host", qname: "ns1." + zone, qtype: mdns.TypeA, answer: []string{"ns1.cdn.example.test. A 127.0.0.53"}},
	{name: "apex A is nodata", qname: zone, qtype: mdns.TypeA, ns: soaNS},
	{name: "A from seoul network", qname: "shop." + zone, qtype: mdns.TypeA, answer: shopKR},
	{name: "AAAA from seoul network", qname: "shop." + zone, qtype: mdns.TypeAAAA,
		answer: []string{"shop.cdn.example.test. AAAA 2001:db8:1::1"}},
	{name: "AAAA elsewhere: the only v6 cloud", qname: "shop." + zone, qtype: mdns.TypeAAAA, client: "10.2.0.9",
		answer: []string{"shop.cdn.example.test. AAAA 2001:db8:1::1"}},
	{name: "A from tokyo network", qname: "shop." + zone, qtype: mdns.TypeA, client: "10.2.0.9", answer: shopJP},
	{name: "more specific network wins (country only: centroid)", qname: "shop." + zone, qtype: mdns.TypeA, client: "10.2.5.9", answer: shopUS},
	{name: "continent only; drained edge left out", qname: "shop." + zone, qtype: mdns.TypeA, client: "192.168.7.1", answer: shopDE},
	{name: "geoip city record", qname: "shop." + zone, qtype: mdns.TypeA, client: "3.3.3.3", answer: shopUS},
	{name: "geoip country without coordinates", qname: "shop." + zone, qtype: mdns.TypeA, client: "2.0.1.1", answer: shopDE},
	{name: "geoip v6 client", qname: "shop." + zone, qtype: mdns.TypeA, client: "2a00:1::1", answer: shopDE},
	{name: "unknown client gets every live edge, at most 4", qname: "shop." + zone, qtype: mdns.TypeA, client: "100.64.0.1",
		anyOf: allLive4, nAnswers: 4},
	{name: "ecs global /24", qname: "shop." + zone, qtype: mdns.TypeA, ecs: "1.0.0.0/24", answer: shopJP, scope: 24},
	{name: "ecs /16 in a /8", qname: "shop." + zone, qtype: mdns.TypeA, ecs: "3.1.0.0/16", answer: shopUS, scope: 8},
	{name: "ecs scope narrower than the network around a more specific one", qname: "shop." + zone, qtype: mdns.TypeA,
		ecs: "10.2.0.0/24", answer: shopJP, scope: 22},
	{name: "ecs private and not configured is ignored", qname: "shop." + zone, qtype: mdns.TypeA, ecs: "172.16.0.0/24",
		client: "10.2.0.9", answer: shopJP, scope: 0},
	{name: "ecs source 0 means the resolver", qname: "shop." + zone, qtype: mdns.TypeA, ecs: "0.0.0.0/0", answer: shopKR, scope: 0},
	{name: "ecs v6", qname: "shop." + zone, qtype: mdns.TypeA, ecs: "2a00:1400::/32", answer: shopDE, scope: 16},
	{name: "ecs on a non-tailored answer has scope 0", qname: zone, qtype: mdns.TypeSOA, ecs: "1.0.0.0/24",
		answer: []string{"cdn.example.test. SOA " + wantSOA}, scope: 0},
	{name: "in-zone alias", qname: "www." + zone, qtype: mdns.TypeA,
		answer: append([]string{"www.cdn.example.test. CNAME shop.cdn.example.test."}, shopKR...)},
	{name: "in-zone alias, deep", qname: "a.b." + zone, qtype: mdns.TypeA, client: "10.2.0.1",
		answer: append([]string{"a.b.cdn.example.test. CNAME shop.cdn.example.test."}, shopJP...)},
	{name: "alias CNAME query", qname: "www." + zone, qtype: mdns.TypeCNAME,
		answer: []string{"www.cdn.example.test. CNAME shop.cdn.example.test."}},
	{name: "alias, target has no such type", qname: "www." + zone, qtype: mdns.TypeMX,
		answer: []string{"www.cdn.example.test. CNAME shop.cdn.example.test."}, ns: soaNS},
	{name: "empty non-terminal is nodata", qname: "b." + zone, qtype: mdns.TypeA, ns: soaNS},
	{name: "nodata", qname: "shop." + zone, qtype: mdns.TypeMX, ns: soaNS},
	{name: "nxdomain", qname: "nope." + zone, qtype: mdns.TypeA, rcode: mdns.RcodeNameError, ns: soaNS},
	{name: "below a distribution is nxdomain", qname: "x.shop." + zone, qtype: mdns.TypeA, rcode: mdns.RcodeNameError, ns: soaNS},
	{name: "disabled distribution", qname: "off." + zone, qtype: mdns.TypeA, rcode: mdns.RcodeNameError, ns: soaNS},
	{name: "pinned distribution", qname: "tokyo-only." + zone, qtype: mdns.TypeA,
		answer: []string{"tokyo-only.cdn.example.test. A 127.0.2.1"}},
	{name: "out-of-zone alias refused", qname: "shop.example.test.", qtype: mdns.TypeA, rcode: mdns.RcodeRefused, noAA: true},
	{name: "parent zone refused", qname: "example.test.", qtype: mdns.TypeSOA, rcode: mdns.RcodeRefused, noAA: true},
	{name: "lookalike suffix refused", qname: "xcdn.example.test.", qtype: mdns.TypeA, rcode: mdns.RcodeRefused, noAA: true},
	{name: "root refused", qname: ".", qtype: mdns.TypeNS, rcode: mdns.RcodeRefused, noAA: true},
	{name: "ANY is minimal (RFC 8482)", qname: "shop." + zone, qtype: mdns.TypeANY, answer: shopKR},
	{name: "ANY at the apex", qname: zone, qtype: mdns.TypeANY, answer: []string{"cdn.example.test. SOA " + wantSOA}},
	{name: "case is ignored", qname: "ShOp.CDN.example.TEST.", qtype: mdns.TypeA, answer: shopKR},
	{name: "chaos class refused", qname: zone, qtype: mdns.TypeTXT, qclass: mdns.ClassCHAOS, rcode: mdns.RcodeRefused, noAA: true},
	{name: "edns", qname: "shop." + zone, qtype: mdns.TypeA, edns: true, answer: shopKR},
}

func (c *tc) msg() *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(c.qname, c.qtype)
	m.RecursionDesired = true
	if c.qclass != 0 {
		m.Question[0].Qclass = c.qclass
	}
	if c.edns || c.ecs != "" {
		m.SetEdns0(1232, false)
	}
	if c.ecs != "" {
		p := netip.MustParsePrefix(c.ecs)
		e := &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(p.Bits()), Address: net.IP(p.Addr().AsSlice())}
		if p.Addr().Is6() {
			e.Family = 2
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, e)
	}
	return m
}

func rrStrings(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == mdns.TypeOPT {
			continue
		}
		h := rr.Header()
		data := strings.TrimPrefix(rr.String(), h.String())
		out = append(out, strings.ToLower(h.Name)+" "+mdns.TypeToString[h.Rrtype]+" "+data)
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// check compares a response with the case; it is shared by every transport.
func (c *tc) check(t *testing.T, q, r *mdns.Msg) {
	t.Helper()
	if r.Id != q.Id || !r.Response || r.RecursionAvailable || r.Opcode != mdns.OpcodeQuery {
		t.Errorf("header: id %d/%d qr %v ra %v", r.Id, q.Id, r.Response, r.RecursionAvailable)
	}
	if !r.RecursionDesired {
		t.Errorf("RD not copied")
	}
	if r.Rcode != c.rcode {
		t.Errorf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[c.rcode])
	}
	if r.Authoritative == c.noAA {
		t.Errorf("AA = %v", r.Authoritative)
	}
	if len(r.Question) != 1 || r.Question[0] != q.Question[0] {
		t.Errorf("question %v, want %v (case kept)", r.Question, q.Question)
	}
	got := rrStrings(r.Answer)
	switch {
	case c.anyOf != nil:
		if len(got) != c.nAnswers {
			t.Errorf("answer %v: want %d records", got, c.nAnswers)
		}
		for _, g := range got {
			if !slices.Contains(c.anyOf, g) {
				t.Errorf("answer %q not in %v", g, c.anyOf)
			}
		}
	case !slices.Equal(got, sorted(c.answer)):
		t.Errorf("answer\n got %q\nwant %q", got, sorted(c.answer))
	}
	if got := rrStrings(r.Ns); !slices.Equal(got, sorted(c.ns)) {
		t.Errorf("authority\n got %q\nwant %q", got, sorted(c.ns))
	}
	if got := rrStrings(r.Extra); !slices.Equal(got, sorted(c.extra)) {
		t.Errorf("additional\n got %q\nwant %q", got, sorted(c.extra))
	}
	for _, rr := range r.Ns {
		if soa, ok := rr.(*mdns.SOA); ok && soa.Hdr.Ttl != 5 {
			t.Errorf("negative answer SOA TTL %d, want the negative TTL 5", soa.Hdr.Ttl)
		}
	}
	for _, rr := range r.Answer {
		if rr.Header().Ttl != 30 {
			t.Errorf("answer TTL %d, want 30: %v", rr.Header().Ttl, rr)
		}
	}
	opt := r.IsEdns0()
	if (q.IsEdns0() != nil) != (opt != nil) {
		t.Fatalf("OPT in response %v, in query %v", opt != nil, q.IsEdns0() != nil)
	}
	if c.ecs != "" {
		var ecs *mdns.EDNS0_SUBNET
		for _, o := range opt.Option {
			if e, ok := o.(*mdns.EDNS0_SUBNET); ok {
				ecs = e
			}
		}
		want := netip.MustParsePrefix(c.ecs)
		switch {
		case ecs == nil:
			t.Errorf("no ECS option in the response")
		case int(ecs.SourceNetmask) != want.Bits() || int(ecs.SourceScope) != c.scope:
			t.Errorf("ECS source/scope %d/%d, want %d/%d", ecs.SourceNetmask, ecs.SourceScope, want.Bits(), c.scope)
		}
	}
}

func TestCasesInProcess(t *testing.T) {
	geo := testGeoIP(t)
	s, err := New(Options{Logger: quietLogger(), Addr: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	st := compile(t, s, testSnapshot(geo))
	var q query
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.msg()
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			client := c.client
			if client == "" {
				client = "127.0.0.1"
			}
			out, _ := st.respond(&q, wire, netip.MustParseAddr(client), false, nil, 0)
			r := new(mdns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatalf("unpack response: %v", err)
			}
			c.check(t, m, r)
		})
	}
}

func TestCasesOverTheNetwork(t *testing.T) {
	geo := testGeoIP(t)
	for _, batch := range []bool{true, false} {
		_, addr := startServer(t, testSnapshot(geo), func(o *Options) { o.NoBatch = !batch })
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) { runCasesOver(t, addr) })
	}
}

func runCasesOver(t *testing.T, addr string) {
	for _, proto := range []string{"udp", "tcp"} {
		cl := &mdns.Client{Net: proto, Timeout: 2 * time.Second}
		var conn *mdns.Conn
		if proto == "tcp" { // one connection for every query, as RFC 7766 wants
			var err error
			if conn, err = cl.Dial(addr); err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
		}
		for _, c := range cases {
			if c.client != "" && c.client != "127.0.0.1" {
				continue
			}
			t.Run(proto+"/"+c.name, func(t *testing.T) {
				m := c.msg()
				var r *mdns.Msg
				var err error
				if conn != nil {
					r, _, err = cl.ExchangeWithConnContext(context.Background(), m, conn)
				} else {
					r, _, err = cl.Exchange(m, addr)
				}
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, m, r)
			})
		}
	}
}

// compile builds snap's state the way Prepare does, without listeners.
func compile(tb testing.TB, s *Server, snap *config.Snapshot) *state {
	tb.Helper()
	g, err := s.geoFor(snap.Site.DNS)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := s.build(snap, nil, g.loc, newRRL(0))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}
