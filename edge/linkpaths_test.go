package edge

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge/paths"
)

// linkSnap: edge-1 in seoul; seoul and tokyo joined by the links named,
// osaka by one link; the origin at url.
func linkSnap(url string, links ...config.LinkKind) *config.Snapshot {
	s := site(1, simple(url))
	s.Site.Nodes[0].Cloud = "seoul"
	s.Site.Clouds = []config.Cloud{
		{Name: "seoul", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
		{Name: "tokyo", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		{Name: "osaka", CIDRs: []netip.Prefix{netip.MustParsePrefix("10.3.0.0/16")}},
	}
	for _, c := range []string{"seoul", "tokyo", "osaka"} {
		s.Site.Nodes = append(s.Site.Nodes, config.Node{Name: c + "-gw", Cloud: c, Roles: []config.Role{config.RoleGateway}})
	}
	names := map[config.LinkKind]string{config.LinkVPN: "vpn", config.LinkDedicated: "dx"}
	for i, k := range links {
		s.Site.Links = append(s.Site.Links, config.Link{Name: names[k] + string(rune('0'+i)), Kind: k,
			A: config.LinkEnd{Node: "seoul-gw"}, B: config.LinkEnd{Node: "tokyo-gw"}})
	}
	s.Site.Links = append(s.Site.Links, config.Link{Name: "osaka", Kind: config.LinkVPN,
		A: config.LinkEnd{Node: "seoul-gw"}, B: config.LinkEnd{Node: "osaka-gw"}})
	return s
}

// The candidates of an origin: its gateway links (BGP's preferred
// kind first) where its cloud is joined to this one by several, else
// direct; parents come after them.
func TestLinkCandidates(t *testing.T) {
	vpn, dx := config.LinkVPN, config.LinkDedicated
	tests := []struct {
		name  string
		url   string
		links []config.LinkKind
		want  []string // nil: not measured
	}{
		{"two links, the line first", "http://10.2.0.20:9002", []config.LinkKind{vpn, dx}, []string{"link:dx1", "link:vpn0"}},
		{"site order within a kind", "http://10.2.0.20", []config.LinkKind{dx, dx, vpn}, []string{"link:dx0", "link:dx1", "link:vpn2"}},
		{"one link: nothing to choose", "http://10.2.0.20", []config.LinkKind{dx}, nil},
		{"origin in this cloud", "http://10.1.0.20", []config.LinkKind{vpn, dx}, nil},
		{"origin in no cloud", "http://192.0.2.1", []config.LinkKind{vpn, dx}, nil},
		{"origin by name", "http://origin.tokyo.test", []config.LinkKind{vpn, dx}, nil},
		{"a cloud with one link", "http://10.3.0.9", []config.LinkKind{vpn, dx}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl, err := buildTable(linkSnap(tc.url, tc.links...), "edge-1", newClientPool(), newMemberIDs())
			if err != nil {
				t.Fatal(err)
			}
			specs := pathSpecs(tbl)
			var got []string
			if len(specs) > 0 {
				got = specs[0].cands
				if !specs[0].choose || specs[0].mode != "links" {
					t.Errorf("choose %v mode %q, want true and links", specs[0].choose, specs[0].mode)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("candidates %v, want %v", got, tc.want)
			}
		})
	}
}

// A link's client marks its connections with the link's TOS.
func TestLinkClientMarksTOS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tos := range []int{0, 0x08, 0x0c, 0x1c} {
		d := net.Dialer{Control: markTOS(tos)}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := c.(*net.TCPConn).SyscallConn()
		got := -1
		raw.Control(func(fd uintptr) { got, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS) })
		c.Close()
		if err != nil || got != tos {
			t.Errorf("TOS %#x: socket has %#x (%v)", tos, got, err)
		}
	}
}

// explore hands out the path not in use whose last real fetch is the
// oldest, once per exploreEvery probe intervals, and never while its
// fetches are recent.
func TestExplore(t *testing.T) {
	m := &pathManager{}
	m.explores = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"distribution", "origin", "path"})
	t0 := time.Unix(1000, 0)
	every := 500 * time.Millisecond
	publish := func(last map[string]time.Time) {
		op := &OriginPaths{Distribution: "d", Origin: "o", every: every}
		for _, id := range []string{"link:dx", "link:vpn", "link:b"} {
			op.Paths = append(op.Paths, PathRow{ID: id, LastFetch: last[id], Stats: paths.Stats{}})
		}
		m.view.Store(&pathView{origins: map[string]*OriginPaths{"d/o": op}})
	}
	publish(map[string]time.Time{"link:dx": t0, "link:vpn": t0.Add(-3 * time.Second), "link:b": t0.Add(-5 * time.Second)})
	steps := []struct {
		at     time.Duration
		others []string
		want   string
	}{
		{0, []string{"link:vpn", "link:b"}, "link:b"},                // the oldest
		{time.Second, []string{"link:vpn", "link:b"}, ""},            // within 4 intervals of the last
		{2 * time.Second, []string{"link:vpn", "link:b"}, "link:b"},  // again
		{2*time.Second + time.Millisecond, []string{"link:vpn"}, ""}, // claimed just now
		{10 * time.Second, nil, ""},                                  // nothing else
		{10 * time.Second, []string{"link:zz"}, ""},                  // not a candidate
		{20 * time.Second, []string{"link:dx"}, "link:dx"},           // the chosen one set aside
	}
	for i, s := range steps {
		if got := m.explore("d/o", s.others, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d (+%v, %v): explore = %q, want %q", i, s.at, s.others, got, s.want)
		}
	}
	// Fresh fetches: nothing to explore.
	m2 := &pathManager{explores: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"distribution", "origin", "path"})}
	m2.view.Store(m.view.Load())
	publish(map[string]time.Time{"link:dx": t0, "link:vpn": t0, "link:b": t0})
	m2.view.Store(m.view.Load())
	if got := m2.explore("d/o", []string{"link:vpn", "link:b"}, t0.Add(time.Second)); got != "" {
		t.Errorf("explore with fetches a second old = %q, want none", got)
	}
	if got := m2.explore("unknown", []string{"link:vpn"}, t0); got != "" {
		t.Errorf("explore of an unknown origin = %q", got)
	}
}
