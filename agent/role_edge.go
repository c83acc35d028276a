package agent

import (
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge"
)

// The edge role serves the site's distributions on the node's listen.http
// (and listen.https when a distribution has a certificate), skips origins
// the controller found unhealthy, and drops invalidated paths.
func init() {
	roleFactories[config.RoleEdge] = func(o RoleOptions) (Role, error) {
		e, err := edge.New(edge.Options{Node: o.Node, Logger: o.Logger, Registry: o.Registry, AccessLog: true, LimitMemory: o.OwnProcess})
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

var (
	_ Role                = (*edge.Edge)(nil)
	_ OriginHealthWatcher = (*edge.Edge)(nil)
	_ Invalidator         = (*edge.Edge)(nil)
	_ AdminRoutes         = (*edge.Edge)(nil)
	_ Reporter            = (*edge.Edge)(nil)
)
