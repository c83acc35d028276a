package agent

import (
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/origin"
	"github.com/intercloud/intercloud/role"
)

// The origin role runs the origin HTTP server on nodes whose config has an
// origin section (root, listen, tokenFile, cacheRules).
func init() {
	roleFactories[config.RoleOrigin] = func(o role.Options) (role.Role, error) { return origin.NewRole(o) }
}

var (
	_ role.Role    = (*origin.Role)(nil)
	_ role.Drifter = (*origin.Role)(nil)
)
