package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/dns"
	"github.com/intercloud/intercloud/role"
)

func TestDNSQuery(t *testing.T) {
	s, err := dns.New(dns.Options{Addr: "127.0.0.1:0", Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	snap := &config.Snapshot{Revision: 1, Site: config.Site{
		DNS: config.DNS{Zone: "cdn.example.test.", Networks: []config.Network{
			{CIDR: netip.MustParsePrefix("10.1.0.0/16"), Location: config.Location{Country: "KR"}}}},
		Nodes: []config.Node{
			{Name: "seoul-edge", Cloud: "seoul", Roles: []config.Role{config.RoleEdge}, Address: "127.0.1.1", Location: config.Location{Country: "KR"}},
			{Name: "tokyo-edge", Cloud: "tokyo", Roles: []config.Role{config.RoleEdge}, Address: "127.0.2.1", Location: config.Location{Country: "JP"}},
		},
	}, Distributions: []config.Distribution{{Name: "shop"}}}
	snap.SetDefaults()
	if err := role.Apply(context.Background(), s, snap); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	r, w, _ := os.Pipe()
	stdout := os.Stdout
	os.Stdout = w
	err = runDNS(context.Background(), []string{"query", "shop.cdn.example.test", "--client", "10.1.2.3", "--node", srv.URL})
	w.Close()
	os.Stdout = stdout
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"network 10.1.0.0/16 KR", "answered from:  seoul", "127.0.1.1", "tokyo-edge"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if err := runDNS(context.Background(), []string{"query"}); err != errUsage {
		t.Errorf("missing NAME: %v", err)
	}
}
