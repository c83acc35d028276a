package dns

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// A delta compiles only what it names, and the zone answers exactly as a
// whole build of the same snapshot does.
func TestStateFromDeltaAnswersAsAWholeBuild(t *testing.T) {
	mk := func(rev int64, mutate func(*config.Snapshot)) *config.Snapshot {
		s := &config.Snapshot{Revision: rev, Site: config.Site{DNS: config.DNS{Zone: zone},
			Nodes: []config.Node{edgeNode("e1", "seoul", "127.0.1.1", seoul), edgeNode("e2", "tokyo", "127.0.2.1", tokyo)}}}
		for i := range 20 {
			s.Distributions = append(s.Distributions, config.Distribution{Name: fmt.Sprintf("d%02d", i), Spec: config.Spec{
				Aliases: []string{fmt.Sprintf("a%02d.cdn.example.test", i), fmt.Sprintf("www.d%02d.example.org", i)}}})
		}
		if mutate != nil {
			mutate(s)
		}
		s.SetDefaults()
		return s
	}
	s, err := New(Options{Logger: quietLogger(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	if err := role.Apply(t.Context(), s, mk(1, nil)); err != nil {
		t.Fatal(err)
	}
	prev := s.cur.Load()
	change := func(snap *config.Snapshot) {
		snap.Distributions[7].Spec.Aliases = []string{"moved.cdn.example.test"}
		snap.Distributions = append(snap.Distributions[:8], snap.Distributions[9:]...) // d08 removed
		snap.Distributions = append(snap.Distributions, config.Distribution{Name: "fresh", Spec: config.Spec{Aliases: []string{"f.cdn.example.test"}}})
	}
	next := mk(2, change)
	next.Delta = &config.Delta{Base: 1, Changed: []string{"d07", "fresh"}, Removed: []string{"d08"}}
	if err := role.Apply(t.Context(), s, next); err != nil {
		t.Fatal(err)
	}
	got := s.cur.Load()
	if got.names[string(mustWire("d01.cdn.example.test."))] != prev.names[string(mustWire("d01.cdn.example.test."))] {
		t.Fatal("the zone was built whole: an unchanged distribution's name is not shared")
	}
	want := compile(t, s, mk(2, change))
	var q query
	for _, name := range []string{"d01", "d07", "d08", "fresh", "a07", "moved", "a08", "f", "a01", "nope", "cdn.example.test."} {
		if name[len(name)-1] != '.' {
			name += ".cdn.example.test."
		}
		for _, qt := range []uint16{mdns.TypeA, mdns.TypeSOA, mdns.TypeCNAME} {
			m := new(mdns.Msg)
			m.SetQuestion(name, qt)
			wire, _ := m.Pack()
			src := netip.MustParseAddr("127.0.0.1")
			a, _ := got.respond(&q, wire, src, false, nil, 0)
			a = bytes.Clone(a)
			b, _ := want.respond(&q, wire, src, false, nil, 0)
			if !bytes.Equal(a, b) {
				ra, rb := new(mdns.Msg), new(mdns.Msg)
				ra.Unpack(a)
				rb.Unpack(b)
				t.Errorf("%s %s:\nfrom the delta:\n%v\nwhole build:\n%v", name, mdns.TypeToString[qt], ra, rb)
			}
		}
	}
}

func mustWire(name string) []byte {
	w, err := fqdnWire(name)
	if err != nil {
		panic(err)
	}
	return w
}
