package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"

	"github.com/intercloud/intercloud/bgp"
)

// Route is one row of GET /v1/bgp/routes: a Loc-RIB path and whether it
// is in the kernel.
type Route struct {
	bgp.Path
	Installed bool `json:"installed"`
}

// mount adds the node API: the BGP sessions and routes, and the tunnels.
// It runs once, from New; the mux belongs to this instance.
func (g *Gateway) mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/bgp/neighbors", func(w http.ResponseWriter, r *http.Request) {
		ns, err := g.bgp.Neighbors(r.Context())
		writeJSON(w, ns, err)
	})
	mux.HandleFunc("GET /v1/bgp/routes", func(w http.ResponseWriter, r *http.Request) {
		rs, err := g.routes(r)
		writeJSON(w, rs, err)
	})
	g.vpn.Routes(mux)
}

func (g *Gateway) routes(r *http.Request) ([]Route, error) {
	paths, err := g.bgp.Paths(r.Context())
	if err != nil {
		return nil, err
	}
	installed := map[netip.Prefix]netip.Addr{}
	if t := g.table.Load(); t != nil {
		for _, rt := range t.Installed() {
			installed[rt.Dst] = rt.Gw
		}
	}
	out := make([]Route, 0, len(paths))
	for _, p := range paths {
		gw, ok := installed[p.Prefix]
		out = append(out, Route{Path: p, Installed: ok && p.Best && gw == p.NextHop})
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, bgp.ErrNotRunning) {
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}
