package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bgp"
)

func TestNodeURL(t *testing.T) {
	t.Setenv("INTERCLOUD_NODE", "")
	for _, tc := range []struct{ flag, env, want string }{
		{"", "", "http://127.0.0.1:9180"},
		{"", "127.0.0.1:9999", "http://127.0.0.1:9999"},
		{"http://127.0.0.1:1/", "http://127.0.0.1:2", "http://127.0.0.1:1"},
	} {
		t.Setenv("INTERCLOUD_NODE", tc.env)
		if got := nodeURL(tc.flag); got != tc.want {
			t.Errorf("nodeURL(%q) with env %q = %q, want %q", tc.flag, tc.env, got, tc.want)
		}
	}
}

func TestPrintNeighborsAndRoutes(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printNeighbors(&b, []bgp.NeighborStatus{
		{Name: "dx", Address: netip.MustParseAddr("10.255.0.2"), ASN: 65002, Kind: bgp.KindDedicated, State: "established",
			Admin: "up", Since: now.Add(-90 * time.Second), Received: 5, Accepted: 3, Advertised: 1},
		{Name: "onprem", Address: netip.MustParseAddr("10.255.0.3"), ASN: 65010, Kind: bgp.KindExternal, State: "idle",
			Admin: "max-prefix", MaxPrefix: 2},
	}, now)
	out := b.String()
	for _, want := range []string{"NAME", "dx", "established", "00:01:30", "idle (max-prefix)", "never", "max-prefix 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("neighbors table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printRoutes(&b, []bgpRoute{
		{Path: bgp.Path{Prefix: netip.MustParsePrefix("10.2.0.0/16"), NextHop: netip.MustParseAddr("10.255.0.2"),
			Neighbor: "dx", Kind: bgp.KindDedicated, LocalPref: 200, ASPath: []uint32{65002}, Best: true, Age: now.Add(-time.Hour)},
			Installed: true},
		{Path: bgp.Path{Prefix: netip.MustParsePrefix("10.1.0.0/16"), NextHop: netip.IPv4Unspecified(), Local: true, Best: true}},
	}, now)
	out = b.String()
	for _, want := range []string{"*", "10.2.0.0/16", "10.255.0.2", "dx", "200", "65002", "01:00:00", "K", "local"} {
		if !strings.Contains(out, want) {
			t.Errorf("routes table lacks %q:\n%s", want, out)
		}
	}
}

func TestGetNodeJSONErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/bgp/neighbors":
			w.WriteHeader(503)
			w.Write([]byte(`{"error":"bgp: not running"}`))
		case "/v1/bgp/routes":
			w.Write([]byte(`not json`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	var v []bgp.NeighborStatus
	for path, want := range map[string]string{
		"/v1/bgp/neighbors": "not running",
		"/v1/bgp/routes":    "decode",
		"/v1/other":         "no gateway role",
	} {
		err := getNodeJSON(context.Background(), srv.URL+path, &v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", path, err, want)
		}
	}
}
