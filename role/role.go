// Package role is the contract between the agent and the jobs a node runs
// (edge, dns, origin, gateway): one lifecycle for all of them. See README.md.
package role

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// Role is one job a node runs. The agent calls it from one goroutine: at
// most one Change is outstanding, and Close comes after it is settled.
type Role interface {
	// Prepare builds everything snap needs beside what runs now: files
	// read, keys loaded, tables compiled, new listeners bound (listeners
	// whose address stays are reused). It must not change what serves,
	// and every error a revision can cause is reported here.
	Prepare(ctx context.Context, snap *config.Snapshot) (Change, error)
	// Ready is nil while the role serves what it committed.
	Ready() error
	// Close stops serving and returns only once every port, device and
	// route the role held is released, so that a replacement can take
	// them at once.
	Close(ctx context.Context) error
}

// Change is a prepared revision of one role.
type Change interface {
	// Commit makes the prepared state the running one. It cannot fail:
	// whatever could fail happened in Prepare. Requests in flight finish
	// on the state they started with.
	Commit()
	// Abort releases what Prepare took; the running state is untouched.
	Abort()
}

// Options is what every role constructor receives. Registry and Mux are
// the role instance's own: it registers its metrics and admin routes there
// once, at construction, and the agent shows them only while the instance
// runs. An instance is never handed a registry or mux another one used,
// so a role removed and added back cannot collide with its predecessor.
type Options struct {
	Node     string
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Mux serves the role's node API under /v1/ on the node's admin address.
	Mux *http.ServeMux
	// StateDir is a per-node, per-role directory the role may keep files in.
	StateDir string
	// OwnProcess says the process runs this node alone, so a role may tune
	// process-wide settings for it (the edge's Go memory limit).
	OwnProcess bool
}

// Factory makes a role instance; it registers metrics and routes and
// binds nothing (Prepare does).
type Factory func(Options) (Role, error)

// NodeWatcher is implemented by roles that need to know which nodes are
// live (their lease exists) and what they report (DNS leaves out dead or
// unhealthy edges). The map holds only live nodes and is never mutated.
type NodeWatcher interface {
	SetNodes(live map[string]status.NodeStatus)
}

// OriginHealthWatcher is implemented by roles that skip unhealthy origins.
// Keys are "<distribution>/<origin>"; the map is never mutated.
type OriginHealthWatcher interface {
	SetOriginHealth(health map[string]status.OriginHealth)
}

// Invalidator is implemented by roles that hold cached content. The agent
// marks the invalidation done for this node once Invalidate returns nil.
type Invalidator interface {
	Invalidate(ctx context.Context, inv status.Invalidation) error
}

// Reporter is implemented by roles that publish a summary of themselves in
// the node's status (hit ratio, BGP sessions, tunnels). Report must be
// cheap: it runs on every registration refresh.
type Reporter interface {
	Report(into *status.RoleReport)
}

// Apply prepares snap and commits it at once: for a role run on its own
// (tests, benchmarks, a standalone daemon), where nothing else must move
// with it.
func Apply(ctx context.Context, r Role, snap *config.Snapshot) error {
	c, err := r.Prepare(ctx, snap)
	if err != nil {
		return err
	}
	c.Commit()
	return nil
}

// Drifter is implemented by roles that own resources outside the process
// (kernel routes, tunnels, sockets, files) which other tools can change
// behind their back. Drift compares their real state with the committed
// revision and lists every difference, with the agent's fields (State,
// Message, Since) left empty; an error is what could not be read (the
// differences found are still returned). Heal puts one resource back as
// the committed revision has it. The agent calls both from its loop, never
// while a Change is outstanding.
type Drifter interface {
	Drift(ctx context.Context) ([]status.DriftResource, error)
	Heal(ctx context.Context, r status.DriftResource) error
}
