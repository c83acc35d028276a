package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

func exchange(t testing.TB, addr, proto string, m *mdns.Msg) *mdns.Msg {
	t.Helper()
	cl := &mdns.Client{Net: proto, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := cl.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %v: %v", proto, m.Question, err)
	}
	return r
}

func qA(name string) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	return m
}

func liveAll(snap *config.Snapshot, except ...string) map[string]status.NodeStatus {
	live := map[string]status.NodeStatus{}
	for _, n := range snap.Site.Nodes {
		if !slices.Contains(except, n.Name) {
			live[n.Name] = status.NodeStatus{Name: n.Name, Healthy: true}
		}
	}
	return live
}

func TestLivenessFallbackAndFailOpen(t *testing.T) {
	snap := testSnapshot("")
	s, addr := startServer(t, snap)
	shop := "shop." + zone
	answer := func() []string { return rrStrings(exchange(t, addr, "udp", qA(shop)).Answer) }

	if got := answer(); !slices.Equal(got, shopKR) {
		t.Fatalf("before SetNodes (liveness unknown: all live): %v", got)
	}
	// One seoul edge dead (no lease), the other unhealthy: the client in
	// Korea goes to the next-nearest cloud, Tokyo.
	live := liveAll(snap, "seoul-edge-1")
	live["seoul-edge-2"] = status.NodeStatus{Name: "seoul-edge-2", Healthy: false}
	s.SetNodes(live)
	if got := answer(); !slices.Equal(got, shopJP) {
		t.Fatalf("seoul down: got %v, want tokyo", got)
	}
	// seoul-edge-2 back: only it is handed out.
	s.SetNodes(liveAll(snap, "seoul-edge-1"))
	if got := answer(); !slices.Equal(got, []string{"shop.cdn.example.test. A 127.0.1.2"}) {
		t.Fatalf("seoul-edge-2 back: %v", got)
	}
	// Every node dead: fail open with every edge (4 of the 6, rotated).
	s.SetNodes(map[string]status.NodeStatus{})
	got := answer()
	if len(got) != 4 {
		t.Fatalf("fail open: %v", got)
	}
	if s.m.failOpen == nil || testutilGauge(s.m.failOpen) != 2 {
		t.Errorf("fail-open gauge %v, want 2 distributions", testutilGauge(s.m.failOpen))
	}
	seen := map[string]bool{}
	for range 12 {
		for _, a := range answer() {
			seen[a] = true
		}
	}
	if len(seen) != 6 { // including the drained frankfurt-edge-2: fail open means every edge
		t.Errorf("fail open handed out %d distinct edges, want 6: %v", len(seen), seen)
	}
}

func TestWeights(t *testing.T) {
	snap := testSnapshot("")
	snap.Site.DNS.MaxAnswers = 1
	n := snap.Site.Node("seoul-edge-2")
	n.Weight = intp(300)
	s, _ := startServer(t, snap)
	st := s.cur.Load()
	var q query
	count := map[string]int{}
	wire, _ := qA("shop." + zone).Pack()
	for turn := range uint32(400) {
		out, _ := st.respond(&q, wire, netip.MustParseAddr("127.0.0.1"), false, nil, turn)
		r := new(mdns.Msg)
		if err := r.Unpack(out); err != nil || len(r.Answer) != 1 {
			t.Fatalf("turn %d: %v %v", turn, err, r)
		}
		count[r.Answer[0].(*mdns.A).A.String()]++
	}
	if count["127.0.1.1"] != 100 || count["127.0.1.2"] != 300 {
		t.Errorf("weights 100:300 gave %v", count)
	}
}

func TestRotation(t *testing.T) {
	snap := testSnapshot("")
	snap.Site.DNS.MaxAnswers = 2
	s, _ := startServer(t, snap)
	st := s.cur.Load()
	var q query
	wire, _ := qA("shop." + zone).Pack()
	firsts := map[string]int{}
	for turn := range uint32(10) {
		out, _ := st.respond(&q, wire, netip.MustParseAddr("100.64.0.1"), false, nil, turn)
		r := new(mdns.Msg)
		if err := r.Unpack(out); err != nil || len(r.Answer) != 2 {
			t.Fatalf("turn %d: %v %v", turn, err, r)
		}
		firsts[r.Answer[0].(*mdns.A).A.String()]++
	}
	if len(firsts) != 5 { // five live edges, each first twice
		t.Errorf("first answers over 10 turns: %v", firsts)
	}
}

func TestTruncation(t *testing.T) {
	snap := testSnapshot("")
	snap.Site.DNS.MaxAnswers = 40
	for i := range 40 {
		snap.Site.Nodes = append(snap.Site.Nodes, edgeNode(fmt.Sprintf("big-%d", i), "big",
			fmt.Sprintf("2001:db8:2::%x", i+1), loc("BR", -23.5, -46.6)))
	}
	snap.Distributions = append(snap.Distributions, config.Distribution{Name: "big", Spec: config.Spec{
		Edges: func() (e []string) {
			for i := range 40 {
				e = append(e, fmt.Sprintf("big-%d", i))
			}
			return e
		}()}})
	_, addr := startServer(t, snap)
	q := func(edns uint16) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetQuestion("big."+zone, mdns.TypeAAAA)
		if edns > 0 {
			m.SetEdns0(edns, false)
		}
		return m
	}
	for _, c := range []struct {
		name  string
		proto string
		edns  uint16
		tc    bool
	}{
		{"udp without edns: 512", "udp", 0, true},
		{"udp edns 1000", "udp", 1000, true},
		{"udp edns 4096 (we cap at 1232, 40 AAAA fit)", "udp", 4096, false},
		{"tcp", "tcp", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := exchange(t, addr, c.proto, q(c.edns))
			if r.Truncated != c.tc {
				t.Fatalf("TC %v, want %v", r.Truncated, c.tc)
			}
			want := 40
			if c.tc {
				want = 0
			}
			if len(r.Answer) != want {
				t.Errorf("%d answers, want %d", len(r.Answer), want)
			}
			if c.edns > 0 && r.IsEdns0() == nil {
				t.Errorf("truncated answer lost its OPT record")
			}
		})
	}
}

// malformed are packets a server meets in the wild; none may crash it and
// each gets FORMERR, NOTIMP or silence.
var malformed = []struct {
	name  string
	pkt   []byte
	rcode int // -1: dropped
}{
	{"empty", nil, -1},
	{"short header", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, -1},
	{"a response", hdr(0x8000, 1, 0, 0, 0), -1},
	{"no question", hdr(0, 0, 0, 0, 0), mdns.RcodeFormatError},
	{"two questions", cat(hdr(0, 2, 0, 0, 0), qn("a"), qn("b")), mdns.RcodeFormatError},
	{"answer records in a query", cat(hdr(0, 1, 1, 0, 0), qn("a")), mdns.RcodeFormatError},
	{"question cut short", cat(hdr(0, 1, 0, 0, 0), []byte{4, 's', 'h'}), mdns.RcodeFormatError},
	{"no type and class", cat(hdr(0, 1, 0, 0, 0), []byte{1, 'a', 0, 0}), mdns.RcodeFormatError},
	{"compressed qname", cat(hdr(0, 1, 0, 0, 0), []byte{0xC0, 12, 0, 1, 0, 1}), mdns.RcodeFormatError},
	{"label type 0x40", cat(hdr(0, 1, 0, 0, 0), []byte{0x41, 'a', 0, 0, 1, 0, 1}), mdns.RcodeFormatError},
	{"name over 255", cat(hdr(0, 1, 0, 0, 0), longName(), []byte{0, 1, 0, 1}), mdns.RcodeFormatError},
	{"notify opcode", cat(hdr(4<<11, 1, 0, 0, 0), qn("a")), mdns.RcodeNotImplemented},
	{"update opcode", cat(hdr(5<<11, 1, 0, 0, 0), qn("a")), mdns.RcodeNotImplemented},
	{"two OPT", cat(hdr(0, 1, 0, 0, 2), qn("shop.cdn.example.test"), opt(nil), opt(nil)), mdns.RcodeFormatError},
	{"OPT not at the root", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), []byte{1, 'x'}, opt(nil)), mdns.RcodeFormatError},
	{"OPT rdata overruns", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), []byte{0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 9}), mdns.RcodeFormatError},
	{"ECS family 3", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), opt([]byte{0, 8, 0, 5, 0, 3, 8, 0, 1})), mdns.RcodeFormatError},
	{"ECS address longer than source", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), opt([]byte{0, 8, 0, 6, 0, 1, 8, 0, 1, 2})), mdns.RcodeFormatError},
	{"ECS bits past source", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), opt([]byte{0, 8, 0, 5, 0, 1, 4, 0, 0xFF})), mdns.RcodeFormatError},
	{"ECS source 33", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), opt([]byte{0, 8, 0, 9, 0, 1, 33, 0, 1, 2, 3, 4, 0})), mdns.RcodeFormatError},
	{"option cut short", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), opt([]byte{0, 8, 0})), mdns.RcodeFormatError},
	{"EDNS version 1", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), []byte{0, 0, 41, 4, 0, 0, 1, 0, 0, 0, 0}), mdns.RcodeBadVers},
	{"unknown option ignored", cat(hdr(0, 1, 0, 0, 1), qn("shop.cdn.example.test"), opt([]byte{0xFF, 0, 0, 1, 7})), mdns.RcodeSuccess},
	{"trailing garbage ignored", cat(hdr(0, 1, 0, 0, 0), qn("shop.cdn.example.test"), []byte{1, 2, 3}), mdns.RcodeSuccess},
}

func hdr(flags, qd, an, ns, ar uint16) []byte {
	return []byte{0xAB, 0xCD, byte(flags >> 8), byte(flags), 0, byte(qd), 0, byte(an), 0, byte(ns), 0, byte(ar)}
}

func qn(name string) []byte {
	b, err := fqdnWire(name)
	if err != nil {
		panic(err)
	}
	return append(b, 0, 1, 0, 1)
}

func opt(rdata []byte) []byte {
	return append([]byte{0, 0, 41, 4, 0, 0, 0, 0, 0, byte(len(rdata) >> 8), byte(len(rdata))}, rdata...)
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

func longName() []byte {
	var b []byte
	for range 5 {
		b = append(b, 60)
		b = append(b, make([]byte, 60)...)
	}
	for i := range b {
		if b[i] == 0 {
			b[i] = 'a'
		}
	}
	return append(b, 0)
}

func TestMalformed(t *testing.T) {
	s, addr := startServer(t, testSnapshot(""))
	st := s.cur.Load()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var q query
	for _, c := range malformed {
		t.Run(c.name, func(t *testing.T) {
			out, o := st.respond(&q, c.pkt, netip.MustParseAddr("127.0.0.1"), false, nil, 0)
			if c.rcode < 0 {
				if out != nil || !o.dropped {
					t.Fatalf("want the packet dropped, got %x", out)
				}
				return
			}
			r := new(mdns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatalf("response does not parse: %v (%x)", err, out)
			}
			if r.Id != 0xABCD || r.Rcode != c.rcode {
				t.Errorf("id %x rcode %s, want %s", r.Id, mdns.RcodeToString[r.Rcode], mdns.RcodeToString[c.rcode])
			}
			// and the same over the wire, where the server must survive it
			if _, err := conn.Write(c.pkt); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no answer over UDP: %v", err)
			}
			w := new(mdns.Msg)
			if err := w.Unpack(buf[:n]); err != nil {
				t.Fatal(err)
			}
			if w.Rcode != r.Rcode || !slices.Equal(rrStrings(w.Answer), rrStrings(r.Answer)) {
				t.Errorf("UDP answer differs from the handler's:\n%v\n%v", w, r)
			}
		})
	}
	// still serving
	if r := exchange(t, addr, "udp", qA("shop."+zone)); len(r.Answer) == 0 {
		t.Fatal("server stopped answering after malformed packets")
	}
}

// TestSwapDropsNothing fires queries from several clients while config and
// liveness change underneath: every query is answered, and every answer is
// consistent with one whole state.
func TestSwapDropsNothing(t *testing.T) {
	a := testSnapshot("")
	b := testSnapshot("")
	b.Revision = 43
	b.Distributions = append(b.Distributions, config.Distribution{Name: "new"})
	s, addr := startServer(t, a)
	var wg sync.WaitGroup
	var answered, bad atomic.Int64
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
			if w%2 == 1 {
				cl.Net = "tcp"
			}
			for i := 0; i < 400; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := new(mdns.Msg)
				m.SetQuestion("shop."+zone, mdns.TypeA)
				if i%2 == 1 {
					m.SetQuestion(zone, mdns.TypeSOA)
				}
				r, _, err := cl.Exchange(m, addr)
				if err != nil {
					t.Errorf("query %d lost: %v", i, err)
					bad.Add(1)
					continue
				}
				answered.Add(1)
				if r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0 {
					t.Errorf("bad answer during swap: %v", r)
					bad.Add(1)
				}
				if soa, ok := r.Answer[0].(*mdns.SOA); ok && soa.Serial != 42 && soa.Serial != 43 {
					t.Errorf("serial %d", soa.Serial)
				}
			}
		}()
	}
	for i := 0; i < 200 && bad.Load() == 0; i++ {
		snap := a
		if i%2 == 1 {
			snap = b
		}
		if err := role.Apply(context.Background(), s, snap); err != nil {
			t.Fatal(err)
		}
		s.SetNodes(liveAll(snap, []string{"seoul-edge-1", "tokyo-edge-1"}[i%2]))
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if answered.Load() == 0 {
		t.Fatal("no query answered")
	}
	t.Logf("%d queries answered across 200 swaps", answered.Load())
}

func TestApplyErrorKeepsServing(t *testing.T) {
	s, addr := startServer(t, testSnapshot(""))
	bad := testSnapshot("")
	bad.Revision = 99
	bad.Distributions[1].Spec.Edges = []string{"no-such-edge"}
	if err := role.Apply(context.Background(), s, bad); err == nil {
		t.Fatal("Apply accepted a pin to an unknown edge")
	}
	bad = testSnapshot("/nonexistent/geo.mmdb")
	if err := role.Apply(context.Background(), s, bad); err == nil {
		t.Fatal("Apply accepted a missing geoip file")
	}
	m := new(mdns.Msg)
	m.SetQuestion(zone, mdns.TypeSOA)
	r := exchange(t, addr, "udp", m)
	if soa := r.Answer[0].(*mdns.SOA); soa.Serial != 42 {
		t.Fatalf("serial %d after failed applies, want 42", soa.Serial)
	}
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
}

func TestBuildErrors(t *testing.T) {
	for name, mod := range map[string]func(*config.Snapshot){
		"empty zone":       func(s *config.Snapshot) { s.Site.DNS.Zone = "" },
		"bad zone":         func(s *config.Snapshot) { s.Site.DNS.Zone = "a..b" },
		"edge address":     func(s *config.Snapshot) { s.Site.Nodes[0].Address = "not-an-ip" },
		"edge no address":  func(s *config.Snapshot) { s.Site.Nodes[0].Address = "" },
		"negative weight":  func(s *config.Snapshot) { s.Site.Nodes[0].Weight = intp(-1) },
		"duplicate name":   func(s *config.Snapshot) { s.Distributions[1].Spec.Aliases = []string{"shop." + zone} },
		"too many answers": func(s *config.Snapshot) { s.Site.DNS.MaxAnswers = 1000 },
		// What config rendering fills is required, not guessed again here.
		"no ttl":          func(s *config.Snapshot) { s.Site.DNS.TTL = 0 },
		"no negative ttl": func(s *config.Snapshot) { s.Site.DNS.NegativeTTL = 0 },
		"no max answers":  func(s *config.Snapshot) { s.Site.DNS.MaxAnswers = 0 },
		"no nameservers":  func(s *config.Snapshot) { s.Site.DNS.Nameservers = nil },
	} {
		t.Run(name, func(t *testing.T) {
			snap := testSnapshot("")
			mod(snap)
			l, _ := newLocator(&geoDB{}, nil)
			if _, err := build(buildInput{snap: snap, loc: l}); err == nil {
				t.Fatal("built")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestAddressInUse(t *testing.T) {
	_, addr := startServer(t, testSnapshot(""))
	s, err := New(Options{Addr: addr, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := role.Apply(context.Background(), s, testSnapshot("")); err == nil {
		s.Close(context.Background())
		t.Fatal("a second server bound the same address")
	}
}
