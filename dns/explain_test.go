package dns

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestExplain(t *testing.T) {
	s, _ := startServer(t, testSnapshot(testGeoIP(t)))
	x, err := s.Explain("www.cdn.example.test", mdns.TypeA, netip.MustParseAddr("10.2.0.9"), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	if x.Pool != "tokyo" || x.Located != "network 10.2.0.0/16" || x.Country != "JP" || x.Rcode != "NOERROR" || len(x.Answer) != 2 {
		t.Fatalf("%+v", x)
	}
	if len(x.Edges) != 7 {
		t.Fatalf("edges %+v", x.Edges)
	}
	for _, e := range x.Edges {
		if e.Name == "tokyo-edge-1" && (e.KM > 50 || !e.Eligible) {
			t.Errorf("tokyo edge %+v", e)
		}
		if e.Name == "frankfurt-edge-2" && e.Eligible {
			t.Errorf("drained edge eligible: %+v", e)
		}
	}

	mux := http.NewServeMux()
	s.Routes(mux)
	for _, c := range []struct {
		url    string
		status int
		pool   string
		scope  int
	}{
		{"/v1/dns/query?name=shop.cdn.example.test&client=127.0.0.1", 200, "seoul", 0},
		{"/v1/dns/query?name=shop.cdn.example.test&client=127.0.0.1&ecs=1.0.0.0/24", 200, "tokyo", 24},
		{"/v1/dns/query?name=shop.cdn.example.test&type=AAAA", 200, "all", 0},
		{"/v1/dns/query?client=127.0.0.1", 400, "", 0},
		{"/v1/dns/query?name=x&type=BOGUS", 400, "", 0},
		{"/v1/dns/query?name=x&client=nope", 400, "", 0},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", c.url, nil))
		if rec.Code != c.status {
			t.Errorf("%s: %d %s", c.url, rec.Code, rec.Body)
			continue
		}
		if c.status != 200 {
			continue
		}
		var x Explanation
		if err := json.Unmarshal(rec.Body.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		if x.Pool != c.pool || x.Scope != c.scope {
			t.Errorf("%s: pool %q scope %d, want %q %d", c.url, x.Pool, x.Scope, c.pool, c.scope)
		}
	}
}

// TestRespondAllocatesNothing holds the request path to its promise: a
// query, with or without ECS, costs no allocation.
func TestRespondAllocatesNothing(t *testing.T) {
	s, _ := startServer(t, testSnapshot(testGeoIP(t)))
	st := s.cur.Load()
	src := netip.MustParseAddr("3.3.3.3")
	for _, c := range cases {
		wire, _ := c.msg().Pack()
		var q query
		out := make([]byte, 0, 4096)
		var turn uint32
		allocs := testing.AllocsPerRun(100, func() {
			resp, o := st.respond(&q, wire, src, false, out, turn)
			turn++
			s.m.observe(false, &o, st.locs)
			_ = rrlKey(&q, &o, src, st.zone)
			_ = resp
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per query", c.name, allocs)
		}
	}
}
