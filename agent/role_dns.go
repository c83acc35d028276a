package agent

import (
	"context"
	"log/slog"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/dns"
	"github.com/intercloud/intercloud/role"
)

// The dns role serves the site's zone on the node's listen.dns (UDP and
// TCP) and follows node liveness to leave out dead edges.
func init() {
	roleFactories[config.RoleDNS] = func(o role.Options) (role.Role, error) {
		// --log-level debug turns the query log on.
		s, err := dns.New(dns.Options{Node: o.Node, Logger: o.Logger, Registry: o.Registry,
			QueryLog: o.Logger.Enabled(context.Background(), slog.LevelDebug)})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

var (
	_ role.Role        = (*dns.Server)(nil)
	_ role.NodeWatcher = (*dns.Server)(nil)
	_ role.Reporter    = (*dns.Server)(nil)
	_ role.Drifter     = (*dns.Server)(nil)
)
