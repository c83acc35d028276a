package dns

import (
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestRRLAccount(t *testing.T) {
	r := newRRL(3)
	var got []rrlAction
	for range 8 {
		got = append(got, r.account(42, 1000))
	}
	want := []rrlAction{rrlPass, rrlPass, rrlPass, rrlSlip, rrlDrop, rrlSlip, rrlDrop, rrlSlip}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("second 1000: %v, want %v", got, want)
		}
	}
	if r.account(42, 1001) != rrlPass {
		t.Fatal("a new second did not reset the budget")
	}
	if r.account(43, 1001) != rrlPass {
		t.Fatal("another answer shares the budget")
	}
	if newRRL(0) != nil {
		t.Fatal("rate 0 is not off")
	}
}

func TestRRLKeys(t *testing.T) {
	s, _ := startServer(t, testSnapshot(""))
	st := s.cur.Load()
	key := func(name string, src string) uint64 {
		var q query
		wire, _ := qA(name).Pack()
		_, o := st.respond(&q, wire, netip.MustParseAddr(src), false, nil, 0)
		return rrlKey(&q, &o, netip.MustParseAddr(src), st.zone)
	}
	if key("shop."+zone, "10.9.9.1") != key("shop."+zone, "10.9.9.200") {
		t.Error("one /24 has two budgets")
	}
	if key("shop."+zone, "10.9.9.1") == key("shop."+zone, "10.9.8.1") {
		t.Error("two /24s share a budget")
	}
	if key("x."+zone, "10.9.9.1") != key("y."+zone, "10.9.9.1") {
		t.Error("random NXDOMAIN names escape the limit")
	}
	if key("shop."+zone, "10.9.9.1") == key("tokyo-only."+zone, "10.9.9.1") {
		t.Error("two answers share a budget")
	}
}

func TestRRLOverUDP(t *testing.T) {
	snap := testSnapshot("")
	snap.Site.DNS.RateLimit = 5
	s, addr := startServer(t, snap)
	cl := &mdns.Client{Net: "udp", Timeout: 100 * time.Millisecond}
	full, truncated, lost := 0, 0, 0
	for range 40 {
		r, _, err := cl.Exchange(qA("shop."+zone), addr)
		switch {
		case err != nil:
			lost++
		case r.Truncated && len(r.Answer) == 0:
			truncated++
		case len(r.Answer) > 0:
			full++
		}
	}
	// 40 queries span at most a few seconds: 5 full answers in each.
	if full > 20 || truncated == 0 || lost == 0 {
		t.Fatalf("full %d truncated %d dropped %d", full, truncated, lost)
	}
	if v := testutilGauge2(s.m.rrlSlip); v != float64(truncated) {
		t.Errorf("slip counter %v, saw %d", v, truncated)
	}
	// TCP is never limited.
	for range 10 {
		if r := exchange(t, addr, "tcp", qA("shop."+zone)); len(r.Answer) == 0 {
			t.Fatal("TCP answer limited")
		}
	}
}
