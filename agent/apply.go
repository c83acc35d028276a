package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// closeTimeout bounds how long a removed role may take to release what it
// holds (its requests in flight finish within it).
const closeTimeout = 10 * time.Second

// apply moves the node to snap as a whole: every role of the node prepares
// it beside what runs, then all commit, or all abort and the node keeps
// serving what it had. Roles the node no longer has are closed after the
// commit and release their ports before apply returns.
func (a *Agent) apply(ctx context.Context, snap *config.Snapshot, cluster string) error {
	err := a.transition(ctx, snap)
	if err != nil {
		running := int64(0)
		if a.applied != nil {
			running = a.applied.Revision
		}
		a.applyErr = fmt.Errorf("revision %d not applied, still serving revision %d: %w", snap.Revision, running, err)
		a.failed = &attempt{snap: snap, cluster: cluster}
		a.report()
		return err
	}
	a.applied, a.cluster, a.applyErr, a.failed = snap, cluster, nil, nil
	a.log.Info("revision applied", "revision", snap.Revision, "hash", snap.Hash[:min(12, len(snap.Hash))], "store", cluster)
	a.register(ctx)
	a.report()
	a.saveLastKnownGood(lastKnownGood{Cluster: cluster, Snapshot: snap})
	return nil
}

// attempt is a revision that failed to apply.
type attempt struct {
	snap    *config.Snapshot
	cluster string
}

type step struct {
	inst   *instance
	fresh  bool
	change role.Change
}

func (a *Agent) transition(ctx context.Context, snap *config.Snapshot) error {
	node := snap.Site.Node(a.opt.Node)
	if node == nil {
		return fmt.Errorf("node %q is not in revision %d of the site", a.opt.Node, snap.Revision)
	}
	var (
		steps       []step
		errs        []error
		unavailable []config.Role
	)
	for _, kind := range node.Roles {
		inst, running := a.roles[kind]
		if !running {
			factory, ok := roleFactories[kind]
			if !ok {
				unavailable = append(unavailable, kind)
				continue
			}
			var err error
			if inst, err = a.newInstance(kind, factory); err != nil {
				errs = append(errs, err)
				continue
			}
			a.feed(inst)
		}
		c, err := prepare(ctx, inst, snap)
		if err != nil {
			errs = append(errs, err)
			if !running {
				a.closeInstance(inst)
			}
			continue
		}
		steps = append(steps, step{inst: inst, fresh: !running, change: c})
	}
	if err := errors.Join(errs...); err != nil {
		for _, s := range steps {
			s.change.Abort()
			if s.fresh {
				a.closeInstance(s.inst)
			}
		}
		return err
	}
	if len(unavailable) > 0 && !slices.Equal(unavailable, a.unavailable) {
		a.log.Warn("roles not available in this build", "roles", unavailable)
	}
	a.unavailable = unavailable
	next := make(map[config.Role]*instance, len(steps))
	var broken []error
	for _, s := range steps {
		if err := commit(s); err != nil {
			a.log.Error("role broke its contract: commit panicked", "err", err)
			broken = append(broken, err)
		}
		next[s.inst.kind] = s.inst
	}
	a.broken = errors.Join(broken...)
	old := a.roles
	a.roles = next
	a.publish() // the removed roles' metrics and routes go before they do
	for kind, inst := range old {
		if next[kind] == nil {
			a.closeInstance(inst)
			a.log.Info("role removed", "role", kind)
		}
	}
	return nil
}

// commit cannot fail by contract. A role that panics anyway costs the
// process nothing: the node goes on with the others and says it is not
// ready until a revision commits cleanly.
func commit(s step) (err error) {
	defer recoverAs(&err, "role %s: commit", s.inst.kind)
	s.change.Commit()
	return nil
}

// closeInstance stops a role and waits until it has released its ports.
func (a *Agent) closeInstance(inst *instance) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := inst.role.Close(ctx); err != nil {
		a.log.Warn("role close", "role", inst.kind, "err", err)
	}
}

// closeRoles stops every role at the end of Run, all at once.
func (a *Agent) closeRoles() {
	done := make(chan struct{}, len(a.roles))
	for _, inst := range a.roles {
		go func() { a.closeInstance(inst); done <- struct{}{} }()
	}
	for range a.roles {
		<-done
	}
	a.roles = map[config.Role]*instance{}
	a.publish()
}
