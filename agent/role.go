// Package agent runs a node's roles from the store: it watches desired state,
// hands each role an immutable snapshot, keeps the last known good snapshot
// on disk, holds the node's lease and reports its status.
package agent

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
)

// Role is one job a node runs. Apply is called with every new snapshot: the
// first call binds listeners and starts serving, later calls swap state
// atomically. An Apply that fails leaves the previous state serving.
type Role interface {
	Apply(ctx context.Context, snap *config.Snapshot) error
	// Ready is nil once the role serves.
	Ready() error
	Close(ctx context.Context) error
}

// AdminRoutes is implemented by roles that expose node-level API endpoints
// (under /v1/) on the node's admin address.
type AdminRoutes interface {
	Routes(mux *http.ServeMux)
}

// RoleOptions is what every role constructor receives.
type RoleOptions struct {
	Node     string
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// StateDir is a per-node directory a role may keep files in.
	StateDir string
	// OwnProcess: see Options.OwnProcess.
	OwnProcess bool
}

// roleFactories maps a role to its constructor; roles whose package is not
// in this build are absent and reported as "not available in this build".
var roleFactories = map[config.Role]func(RoleOptions) (Role, error){}

// NodeWatcher is implemented by roles that need to know which nodes are
// live (their lease exists) and what they report (DNS leaves out dead or
// unhealthy edges). The map holds only live nodes and is never mutated.
type NodeWatcher interface {
	SetNodes(live map[string]config.NodeStatus)
}

// OriginHealthWatcher is implemented by roles that skip unhealthy origins.
// Keys are "<distribution>/<origin>"; the map is never mutated.
type OriginHealthWatcher interface {
	SetOriginHealth(health map[string]config.OriginHealth)
}

// Invalidator is implemented by roles that hold cached content. The agent
// marks the invalidation done for this node once Invalidate returns nil.
type Invalidator interface {
	Invalidate(ctx context.Context, inv config.Invalidation) error
}

// Reporter is implemented by roles that publish a summary of themselves in
// the node's status (hit ratio, BGP sessions, tunnels). Report must be
// cheap: it runs on every registration refresh.
type Reporter interface {
	Report(into *config.RoleReport)
}
