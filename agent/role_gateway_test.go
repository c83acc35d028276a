package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestGatewayReAddedOnTheSameMux: the agent mounts each new gateway
// instance on its one admin mux (a role removed and added back); the
// second mount must not panic, and the routes follow the live instance.
func TestGatewayReAddedOnTheSameMux(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	status := func() int {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/vpn")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	for round := range 2 {
		r, err := roleFactories["gateway"](RoleOptions{Node: "gw", Registry: reg})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		r.(AdminRoutes).Routes(mux)
		if code := status(); code != http.StatusOK {
			t.Fatalf("round %d: /v1/vpn with a live gateway: %d", round, code)
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if code := status(); code != http.StatusServiceUnavailable {
			t.Fatalf("round %d: /v1/vpn after close: %d, want 503", round, code)
		}
	}
}
