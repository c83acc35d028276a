package gateway

import (
	"fmt"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/vpn"
)

// Config is what a gateway runs: derived from a snapshot by FromSnapshot,
// or written directly by tests and benchmarks that have no site.
type Config struct {
	BGP     bgp.Config
	Route   route.Config
	Tunnels []vpn.Tunnel `json:",omitempty"`
	// LinkPaths are the links this gateway ends that edges may choose
	// between (linkpaths.go).
	LinkPaths []LinkPath `json:",omitempty"`
}

// FromSnapshot derives node's gateway config from a snapshot. It touches
// nothing outside the snapshot (key files are read by Prepare).
func FromSnapshot(snap *config.Snapshot, node string) (Config, error) {
	n := snap.Site.Node(node)
	if n == nil {
		return Config{}, fmt.Errorf("gateway: node %q is not in revision %d of the site", node, snap.Revision)
	}
	var c Config
	var err error
	if c.BGP, err = bgp.FromSite(&snap.Site, node); err != nil {
		return Config{}, fmt.Errorf("gateway: bgp: %w", err)
	}
	if gw := n.Gateway; gw != nil {
		c.Route = route.Config{Table: gw.Table, Protocol: gw.Protocol, GracefulRestart: gw.GracefulRestart}
	}
	if c.Tunnels, err = vpn.FromSite(&snap.Site, node); err != nil {
		return Config{}, fmt.Errorf("gateway: tunnels: %w", err)
	}
	c.LinkPaths = linkPathsOf(&snap.Site, node)
	return c, nil
}

// validate checks what the parts can check without the system.
func (c *Config) validate() error {
	if err := c.BGP.Validate(); err != nil {
		return fmt.Errorf("gateway: bgp config: %w", err)
	}
	if err := c.Route.Validate(); err != nil {
		return fmt.Errorf("gateway: route config: %w", err)
	}
	return nil
}
