package agent

import (
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge"
	"github.com/intercloud/intercloud/role"
)

// The edge role serves the site's distributions on the node's listen.http
// (and listen.https when a distribution has a certificate), skips origins
// the controller found unhealthy, and drops invalidated paths.
func init() {
	roleFactories[config.RoleEdge] = func(o role.Options) (role.Role, error) {
		e, err := edge.New(edge.Options{Node: o.Node, Logger: o.Logger, Registry: o.Registry, Mux: o.Mux, AccessLog: true, LimitMemory: o.OwnProcess})
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

var (
	_ role.Role                = (*edge.Edge)(nil)
	_ role.OriginHealthWatcher = (*edge.Edge)(nil)
	_ role.Invalidator         = (*edge.Edge)(nil)
	_ role.Reporter            = (*edge.Edge)(nil)
	_ role.Drifter             = (*edge.Edge)(nil)
)
