// Package agent runs a node's roles from the store: it watches desired state,
// prepares every role of the node for a new snapshot and commits them
// together (or none), keeps the last known good snapshot on disk, holds
// the node's lease and reports its status.
package agent

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// roleFactories maps a role to its constructor; roles whose package is not
// in this build are absent and reported as "not available in this build".
var roleFactories = map[config.Role]role.Factory{}

// instance is one constructed role with the registry and mux it was given:
// they are its alone, and shown only while it runs.
type instance struct {
	kind config.Role
	role role.Role
	reg  *prometheus.Registry
	mux  *http.ServeMux
}

func (a *Agent) newInstance(kind config.Role, factory role.Factory) (inst *instance, err error) {
	defer recoverAs(&err, "construct role %s", kind)
	inst = &instance{kind: kind, reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
	inst.role, err = factory(role.Options{Node: a.opt.Node, Logger: a.log.With("role", string(kind)),
		Registry: inst.reg, Mux: inst.mux, StateDir: filepath.Join(a.opt.StateDir, string(kind)), OwnProcess: a.opt.OwnProcess})
	if err != nil {
		return nil, fmt.Errorf("start role %s: %w", kind, err)
	}
	return inst, nil
}

// prepare asks a role for its change; a panic in a role's Prepare is that
// revision's error, not the end of the process.
func prepare(ctx context.Context, inst *instance, snap *config.Snapshot) (c role.Change, err error) {
	defer recoverAs(&err, "role %s: prepare revision %d", inst.kind, snap.Revision)
	// Roles name themselves in their errors ("edge: listen ...").
	return inst.role.Prepare(ctx, snap)
}

func recoverAs(err *error, format string, args ...any) {
	if p := recover(); p != nil {
		*err = fmt.Errorf(format+": panic: %v\n%s", append(args, p, debug.Stack())...)
	}
}
