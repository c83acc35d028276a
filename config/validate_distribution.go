package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

func (c *checker) distributions(s *Snapshot) {
	zone := strings.TrimSuffix(s.Site.DNS.Zone, ".")
	// Every hostname a distribution answers for: its own domain and its
	// aliases. A name claimed twice would make routing depend on order.
	claimed := map[string]string{}
	names := map[string]bool{}
	for i := range s.Distributions {
		d := &s.Distributions[i]
		if zone != "" {
			claimed[strings.ToLower(d.Domain(zone))] = d.Name
		}
		if c.locs == nil {
			o := "distribution " + d.Name
			if !nameRE.MatchString(d.Name) {
				c.errf(o, "name", "invalid distribution name %q (a DNS label)", d.Name)
			} else if names[d.Name] {
				c.errf(o, "name", "duplicate distribution %q", d.Name)
			}
			names[d.Name] = true
		}
	}
	for i := range s.Distributions {
		d := &s.Distributions[i]
		o := "distribution " + d.Name
		if b, err := json.Marshal(d); err == nil && len(b) > MaxDistributionBytes {
			c.errf(o, "spec", "%d bytes once encoded; the store keeps a distribution in one etcd value of at most %d bytes: split it", len(b), MaxDistributionBytes)
		}
		seen := map[string]bool{}
		for j, a := range d.Spec.Aliases {
			p := fmt.Sprintf("spec.aliases[%d]", j)
			if c.skip(a) {
				continue
			}
			la := strings.ToLower(a)
			switch owner, taken := claimed[la]; {
			case !validHostname(la):
				c.errf(o, p, "invalid hostname %q (DNS labels, no trailing dot)", a)
			case seen[la]:
				c.errf(o, p, "alias %q listed twice", a)
			case taken && owner == d.Name:
				c.errf(o, p, "alias %q is the distribution's own domain", a)
			case taken:
				c.errf(o, p, "alias %q is already claimed by distribution %q", a, owner)
			default:
				claimed[la] = d.Name
			}
			seen[la] = true
		}
		c.spec(o, s, d)
		c.tiers(o, s, d)
	}
}

func (c *checker) ttl(o, path string, t TTL) {
	if t.Min != nil && t.Max != nil && *t.Min > *t.Max {
		c.errf(o, path+".min", "min %s is above max %s", t.Min, t.Max)
		return
	}
	if t.Default == nil {
		return
	}
	if t.Min != nil && *t.Default < *t.Min {
		c.errf(o, path+".default", "default %s is below min %s", t.Default, t.Min)
	}
	if t.Max != nil && *t.Default > *t.Max {
		c.errf(o, path+".default", "default %s is above max %s", t.Default, t.Max)
	}
}

func (c *checker) spec(o string, s *Snapshot, d *Distribution) {
	sp := &d.Spec
	c.ttl(o, "spec.ttl", sp.TTL)

	if len(sp.Origins) == 0 {
		c.errf(o, "spec.origins", "no origins (want at least one, e.g. web: {url: http://127.0.0.1:9001})")
	}
	for _, k := range sortedKeys(sp.Origins) {
		og := sp.Origins[k]
		p := "spec.origins." + k
		c.name(o, p, "origin", k)
		if !c.skip(og.URL) {
			if og.URL == "" {
				c.errf(o, p+".url", "missing")
			} else if u, err := url.Parse(og.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.errf(o, p+".url", "origin URL %q must be absolute http:// or https:// with a host", og.URL)
			} else if u.RawQuery != "" || u.Fragment != "" {
				c.errf(o, p+".url", "origin URL %q must not have a query or fragment", og.URL)
			}
		}
		if og.HostHeader != "" && !c.skip(og.HostHeader) {
			if _, _, err := hostPort(og.HostHeader + ":0"); err != nil {
				c.errf(o, p+".hostHeader", "invalid host %q", og.HostHeader)
			}
		}
		if h := og.Health; h != nil {
			if !c.skip(h.Path) && !strings.HasPrefix(h.Path, "/") {
				c.errf(o, p+".health.path", "path %q must start with /", h.Path)
			}
			if h.Healthy < 0 || h.Unhealthy < 0 {
				c.errf(o, p+".health", "healthy and unhealthy must not be negative")
			}
			if h.Interval != 0 && h.Timeout > h.Interval {
				c.errf(o, p+".health.timeout", "timeout %s is longer than interval %s", h.Timeout, h.Interval)
			}
		}
	}

	for _, k := range sortedKeys(sp.OriginGroups) {
		g := sp.OriginGroups[k]
		p := "spec.originGroups." + k
		c.name(o, p, "origin group", k)
		if _, clash := sp.Origins[k]; clash {
			c.errf(o, p, "%q names both an origin and an origin group", k)
		}
		if len(g.Members) == 0 {
			c.errf(o, p+".members", "no members")
		}
		seen := map[string]bool{}
		for j, m := range g.Members {
			mp := fmt.Sprintf("%s.members[%d]", p, j)
			if _, ok := sp.Origins[m]; !ok && !c.skip(m) {
				c.errf(o, mp, "%q is not an origin of this distribution", m)
			}
			if seen[m] {
				c.errf(o, mp, "%q listed twice", m)
			}
			seen[m] = true
		}
		switch {
		case c.skip(g.Active):
		case g.Active == "":
			c.errf(o, p+".active", "missing (the member that serves)")
		case !seen[g.Active]:
			c.errf(o, p+".active", "%q is not a member of the group", g.Active)
		}
		for j, st := range g.FailoverOn {
			if st < 400 || st > 599 {
				c.errf(o, fmt.Sprintf("%s.failoverOn[%d]", p, j), "status %d out of range 400..599", st)
			}
		}
		if cn := g.Canary; cn != nil {
			switch {
			case c.skip(cn.Member):
			case !seen[cn.Member]:
				c.errf(o, p+".canary.member", "%q is not a member of the group", cn.Member)
			case cn.Member == g.Active:
				c.errf(o, p+".canary.member", "%q is already the active member", cn.Member)
			}
			if cn.Weight < 0 || cn.Weight > 100 {
				c.errf(o, p+".canary.weight", "weight %d out of range 0..100", cn.Weight)
			}
		}
	}

	if len(sp.Behaviors) == 0 {
		c.errf(o, "spec.behaviors", `no behaviors (want at least the default {path: "*", target: ...})`)
	}
	paths := map[string]int{}
	def := -1
	for j, b := range sp.Behaviors {
		p := fmt.Sprintf("spec.behaviors[%d]", j)
		switch {
		case c.skip(b.Path):
		case b.Path == "":
			c.errf(o, p+".path", "missing")
		case b.Path != "*" && !strings.HasPrefix(b.Path, "/"):
			c.errf(o, p+".path", "pattern %q must start with / (or be the default \"*\")", b.Path)
		}
		if k, dup := paths[b.Path]; dup && b.Path != "" {
			c.errf(o, p+".path", "pattern %q also in behaviors[%d]; this one never matches", b.Path, k)
		} else {
			paths[b.Path] = j
		}
		if def >= 0 {
			c.errf(o, p+".path", "comes after the default \"*\" (behaviors[%d]) and never matches", def)
		}
		if b.Path == "*" && def < 0 {
			def = j
		}
		_, isOrigin := sp.Origins[b.Target]
		_, isGroup := sp.OriginGroups[b.Target]
		switch {
		case c.skip(b.Target):
		case b.Target == "":
			c.errf(o, p+".target", "missing (an origin or origin group)")
		case !isOrigin && !isGroup:
			c.errf(o, p+".target", "%q is neither an origin nor an origin group", b.Target)
		}
		c.ttl(o, p+".ttl", b.TTL)
		for k, m := range b.Methods {
			if !c.skip(m) && (!tokenRE.MatchString(m) || strings.ToUpper(m) != m) {
				c.errf(o, fmt.Sprintf("%s.methods[%d]", p, k), "invalid method %q (uppercase, e.g. GET)", m)
			}
		}
		c.headerNames(o, p+".forward.headers", b.Forward.Headers)
	}
	if len(sp.Behaviors) > 0 && def < 0 {
		c.errf(o, "spec.behaviors", `no default behavior: add {path: "*", target: ...} last`)
	}

	statuses := map[int]bool{}
	for j, e := range sp.ErrorPages {
		p := fmt.Sprintf("spec.errorPages[%d]", j)
		if e.Status < 400 || e.Status > 599 {
			c.errf(o, p+".status", "status %d out of range 400..599", e.Status)
		} else if statuses[e.Status] {
			c.errf(o, p+".status", "status %d has two error pages", e.Status)
		}
		statuses[e.Status] = true
		if !c.skip(e.Path) && !strings.HasPrefix(e.Path, "/") {
			c.errf(o, p+".path", "path %q must start with /", e.Path)
		}
		if e.ResponseCode != 0 && (e.ResponseCode < 100 || e.ResponseCode > 599) {
			c.errf(o, p+".responseCode", "status %d out of range 100..599", e.ResponseCode)
		}
	}

	for _, h := range []struct {
		p string
		e HeaderEdit
	}{{"spec.headers.request", sp.Headers.Request}, {"spec.headers.response", sp.Headers.Response}} {
		for _, k := range sortedKeys(h.e.Set) {
			if !tokenRE.MatchString(k) {
				c.errf(o, h.p+".set."+k, "invalid header name %q", k)
			}
		}
		c.headerNames(o, h.p+".remove", h.e.Remove)
	}
	if (sp.TLS.CertFile == "") != (sp.TLS.KeyFile == "") {
		c.errf(o, "spec.tls", "certFile and keyFile go together")
	}
	var nodes map[string]*Node
	if len(sp.Edges) > 0 {
		nodes = nodeIndex(&s.Site)
	}
	for j, e := range sp.Edges {
		n := nodes[e]
		switch {
		case c.skip(e):
		case n == nil:
			c.errf(o, fmt.Sprintf("spec.edges[%d]", j), "unknown node %q", e)
		case !n.HasRole(RoleEdge):
			c.errf(o, fmt.Sprintf("spec.edges[%d]", j), "node %q has no edge role", e)
		}
	}
}

func (c *checker) headerNames(o, path string, names []string) {
	for i, h := range names {
		if !c.skip(h) && !tokenRE.MatchString(h) {
			c.errf(o, fmt.Sprintf("%s[%d]", path, i), "invalid header name %q", h)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
