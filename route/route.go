// Package route installs learned routes in the kernel with netlink. Our
// routes carry a dedicated protocol number so that only they are ever
// touched: a learned route never replaces a connected, local or another
// protocol's route for the same prefix, stale routes of ours are swept on
// start, and ours are removed on a graceful stop (or kept, with graceful
// restart).
package route

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// DefaultProtocol marks our routes (`ip route show proto 200`). Values
// below 200 are taken by the kernel and well-known daemons (bird is 12,
// zebra 11, bgp 186).
const DefaultProtocol = 200

// MainTable is the kernel's main routing table.
const MainTable = 254

// Config says where routes go and how they are marked.
type Config struct {
	// Table is the routing table (0: main).
	Table int
	// Protocol is the route protocol number marking our routes (0: 200).
	Protocol int
	// GracefulRestart keeps our routes when the table is closed, and on
	// the next start keeps the ones found until StaleAfter has passed,
	// so forwarding continues while BGP re-converges.
	GracefulRestart bool
	// StaleAfter is how long routes kept over a restart are left alone
	// (default 2 minutes).
	StaleAfter time.Duration
}

// WithDefaults is the config as a table runs it: the zero values filled in.
func (c Config) WithDefaults() Config {
	if c.Table == 0 {
		c.Table = MainTable
	}
	if c.Protocol == 0 {
		c.Protocol = DefaultProtocol
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 2 * time.Minute
	}
	return c
}

// Validate reports what is wrong with the config.
func (c Config) Validate() error {
	var errs []error
	// 253-255 are default, main and local; 0 means main here.
	if c.Table < 0 || c.Table > 0xFFFFFFFE || c.Table == 255 || c.Table == 253 {
		errs = append(errs, fmt.Errorf("table %d: not a table for learned routes", c.Table))
	}
	// 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
	if c.Protocol != 0 && (c.Protocol < 5 || c.Protocol > 255) {
		errs = append(errs, fmt.Errorf("protocol %d: want 5..255 (0 for the default %d)", c.Protocol, DefaultProtocol))
	}
	if c.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("staleAfter %v: negative", c.StaleAfter))
	}
	return errors.Join(errs...)
}

// Route is one learned route: a prefix through a next hop.
type Route struct {
	Dst netip.Prefix `json:"dst"`
	Gw  netip.Addr   `json:"gw"`
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Gw.String() }
