package agent

import (
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/gateway"
	"github.com/intercloud/intercloud/role"
)

// The gateway role peers with BGP over the node's links, runs its
// WireGuard tunnels and installs what it learns in the kernel.
func init() {
	roleFactories[config.RoleGateway] = func(o role.Options) (role.Role, error) { return gateway.New(o) }
}

var (
	_ role.Role     = (*gateway.Gateway)(nil)
	_ role.Reporter = (*gateway.Gateway)(nil)
	_ role.Drifter  = (*gateway.Gateway)(nil)
)
