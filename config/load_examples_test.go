package config

import (
	"testing"
)

// The example directories load, render and keep the properties their
// comments promise.
func TestExamples(t *testing.T) {
	for _, dir := range []string{"../examples/quickstart", "../examples/multicloud", "../examples/stacks"} {
		t.Run(dir, func(t *testing.T) {
			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.Render(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Distributions) < 2 || len(s.Site.Clouds) != 2 {
				t.Errorf("%d distributions, %d clouds", len(s.Distributions), len(s.Site.Clouds))
			}
			if s.Outputs["shop"]["domain"] != "shop.cdn.example.test" {
				t.Errorf("outputs %v", s.Outputs)
			}
		})
	}
}

// The quickstart runs on the host: every address it listens on or sends to
// must be loopback, and it has no gateways (they need root and namespaces).
func TestQuickstartStaysOnLoopback(t *testing.T) {
	s := quickstart(t)
	addrs := []string{s.Site.Store.Listen, s.Site.Store.Peer, s.Site.Controller.Admin}
	for _, n := range s.Site.Nodes {
		if n.HasRole(RoleGateway) {
			t.Errorf("node %s is a gateway", n.Name)
		}
		addrs = append(addrs, n.Listen.HTTP, n.Listen.HTTPS, n.Listen.DNS, n.Listen.Admin, n.Address+":0")
		if n.Origin != nil {
			addrs = append(addrs, n.Origin.Listen)
		}
	}
	for _, d := range s.Distributions {
		for _, o := range d.Spec.Origins {
			addrs = append(addrs, o.URL[len("http://"):])
		}
	}
	for _, a := range addrs {
		if a == "" || a == ":0" {
			continue
		}
		host, _, err := hostPort(a)
		if err != nil || len(host) < 4 || host[:4] != "127." {
			t.Errorf("address %q is not on loopback", a)
		}
	}
}
