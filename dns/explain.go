package dns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// Explanation says what the server answers a client and why; it backs
// `intercloud dns query NAME --client IP`.
type Explanation struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Client string `json:"client"`
	ECS    string `json:"ecs,omitempty"`
	// ECSUsed is false when the ECS address was not global nor configured.
	ECSUsed bool `json:"ecsUsed"`
	// Located is the record that placed the client: "network 10.1.0.0/16",
	// "geoip KR", or "" when the client's location is unknown.
	Located   string `json:"located,omitempty"`
	Country   string `json:"country,omitempty"`
	Continent string `json:"continent,omitempty"`
	Scope     int    `json:"scope"`
	Pool      string `json:"pool,omitempty"` // the cloud answered from, "all" or "fail-open"
	// ByLatency: the distribution's dns.policy is latency and the pool is
	// the cloud whose edges measured the lowest RTT towards Measured's
	// network (listed best first), not the nearest one.
	ByLatency bool     `json:"byLatency,omitempty"`
	Measured  []string `json:"measured,omitempty"`
	Rcode     string   `json:"rcode"`
	Answer    []string `json:"answer"`
	Authority []string `json:"authority,omitempty"`
	// Edges are the distribution's edges as DNS saw them.
	Edges []ExplainedEdge `json:"edges,omitempty"`
}

// ExplainedEdge is one edge considered for an answer.
type ExplainedEdge struct {
	Name     string  `json:"name"`
	Cloud    string  `json:"cloud"`
	Address  string  `json:"address"`
	Weight   int     `json:"weight"`
	Eligible bool    `json:"eligible"` // live, healthy and weight > 0
	KM       float64 `json:"km,omitempty"`
}

// Explain answers name/qtype as it would for a query from client (with an
// ECS option when ecs is valid) and says why.
func (s *Server) Explain(name string, qtype uint16, client netip.Addr, ecs netip.Prefix) (*Explanation, error) {
	st := s.cur.Load()
	if st == nil {
		return nil, errors.New("dns: no config applied yet")
	}
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	if ecs.IsValid() {
		m.SetEdns0(ourUDPSize, false)
		e := &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(ecs.Bits()), Address: ecs.Masked().Addr().AsSlice()}
		if ecs.Addr().Is6() {
			e.Family = 2
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, e)
	}
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	var q query
	out, o := st.respond(&q, wire, client, true, nil, 0)
	if out == nil {
		return nil, errors.New("dns: query dropped")
	}
	r := new(mdns.Msg)
	if err := r.Unpack(out); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	x := &Explanation{Name: m.Question[0].Name, Type: mdns.TypeToString[qtype], Client: client.String(),
		ECSUsed: o.ecsUsed, Rcode: mdns.RcodeToString[r.Rcode], Answer: []string{}}
	if ecs.IsValid() {
		x.ECS = ecs.String()
		if o.ecsUsed {
			x.Scope = int(o.scope)
		}
	}
	for _, rr := range r.Answer {
		x.Answer = append(x.Answer, rr.String())
	}
	for _, rr := range r.Ns {
		x.Authority = append(x.Authority, rr.String())
	}
	if o.pool != nil {
		x.Pool = o.pool.label
	}
	x.ByLatency = o.byLatency
	if o.byLatency && st.lat != nil {
		addr := client
		if o.ecsUsed {
			addr = ecs.Addr()
		}
		n := clientNetwork(addr)
		for _, c := range st.lat.Load().nets[n] {
			x.Measured = append(x.Measured, fmt.Sprintf("%s: %s from cloud %s", n, c.rtt, c.cloud))
		}
	}
	var here *place
	if o.place >= 0 && st.loc != nil && int(o.place) < len(st.loc.places) {
		here = &st.loc.places[o.place]
		x.Located, x.Country, x.Continent = here.label, here.country, here.continent
	}
	e := st.names[string(q.lowerName())]
	if e != nil && e.kind == kindAlias {
		e = e.tgt
	}
	if e != nil && e.kind == kindDist {
		for _, m := range e.group.members {
			ee := ExplainedEdge{Name: m.name, Cloud: m.cloud, Address: m.addr.String(), Weight: m.weight, Eligible: m.eligible}
			if here != nil && here.known && m.place.known {
				ee.KM = float64(int(distance(here, &m.place)*6371*10)) / 10
			}
			x.Edges = append(x.Edges, ee)
		}
	}
	return x, nil
}

// Routes mounts GET /v1/dns/query?name=&type=&client=&ecs= on the node's
// admin mux: the server's answer for a client, and why.
func (s *Server) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/dns/query", func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		name := v.Get("name")
		if name == "" {
			http.Error(w, "name is required", http.StatusBadRequest)
			return
		}
		qtype := uint16(mdns.TypeA)
		if t := v.Get("type"); t != "" {
			var ok bool
			if qtype, ok = mdns.StringToType[strings.ToUpper(t)]; !ok {
				http.Error(w, "unknown type "+t, http.StatusBadRequest)
				return
			}
		}
		client := netip.IPv4Unspecified()
		if c := v.Get("client"); c != "" {
			a, err := netip.ParseAddr(c)
			if err != nil {
				http.Error(w, "client: "+err.Error(), http.StatusBadRequest)
				return
			}
			client = a
		}
		var ecs netip.Prefix
		if e := v.Get("ecs"); e != "" {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				http.Error(w, "ecs: "+err.Error(), http.StatusBadRequest)
				return
			}
			ecs = p
		}
		x, err := s.Explain(name, qtype, client, ecs)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(x)
	})
}
