// Package promreg registers a component's collectors as one group: all or
// nothing, and removed together when the component stops, so that a role
// restarted on the same registry (a node that loses a role and gets it
// back) registers again instead of failing.
package promreg

import "github.com/prometheus/client_golang/prometheus"

// Group is a set of registered collectors. A nil *Group is valid and
// unregisters nothing.
type Group struct {
	reg prometheus.Registerer
	cs  []prometheus.Collector
}

// Register registers every collector with reg, or none: on an error the
// ones already registered are removed again. A nil reg registers nothing.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) (*Group, error) {
	g := &Group{reg: reg}
	if reg == nil {
		return g, nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			g.Unregister()
			return nil, err
		}
		g.cs = append(g.cs, c)
	}
	return g, nil
}

// Unregister removes the group's collectors; calling it again does nothing.
func (g *Group) Unregister() {
	if g == nil {
		return
	}
	for _, c := range g.cs {
		g.reg.Unregister(c)
	}
	g.cs = nil
}

// Collect collects every collector of the group, so that a component can
// be shown through a collector that follows whichever group is current.
func (g *Group) Collect(ch chan<- prometheus.Metric) {
	if g == nil {
		return
	}
	for _, c := range g.cs {
		c.Collect(ch)
	}
}
