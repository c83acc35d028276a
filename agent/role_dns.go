package agent

import (
	"context"
	"log/slog"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/dns"
)

// The dns role serves the site's zone on the node's listen.dns (UDP and
// TCP) and follows node liveness to leave out dead edges.
func init() {
	roleFactories[config.RoleDNS] = func(o RoleOptions) (Role, error) {
		lg := o.Logger
		if lg == nil {
			lg = slog.Default()
		}
		// --log-level debug turns the query log on.
		s, err := dns.New(dns.Options{Node: o.Node, Logger: lg, Registry: o.Registry,
			QueryLog: lg.Enabled(context.Background(), slog.LevelDebug)})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// The server is both a Role and a NodeWatcher.
var (
	_ Role        = (*dns.Server)(nil)
	_ NodeWatcher = (*dns.Server)(nil)
)
