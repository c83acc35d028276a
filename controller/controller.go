// Package controller turns desired state into revisions in the store and
// keeps checking it: plan, apply, rollback, history, blue/green promotion,
// invalidations, origin and edge health checks with auto-healing, drift,
// and the HTTP API that the CLI talks to. It is the only writer of desired
// state.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/store"
)

// Controller owns the desired state.
type Controller struct {
	store *store.Store
	log   *slog.Logger
	token string

	// commitMu serialises read-modify-write of revisions inside this
	// process; the store's compare-and-swap guards against other writers.
	commitMu sync.Mutex

	metrics *metrics
	health  *healthState
	rollout *rolloutState
	series  *seriesState
	commits atomic.Int64
	prune   chan struct{}

	// statusCache is the desired snapshot status pages were last built
	// from (see desired).
	statusCache struct {
		sync.Mutex
		snap  *config.Snapshot
		nodes []*config.Node
	}
}

// Options configure a controller.
type Options struct {
	Store    *store.Store
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Token authorises mutating API calls; empty disables mutation over HTTP.
	Token string
}

// New builds a controller; Run starts its background work.
func New(o Options) *Controller {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Controller{store: o.Store, log: o.Logger, token: o.Token, metrics: newMetrics(o.Registry)}
	c.health = newHealthState()
	c.rollout = newRolloutState()
	c.series = newSeriesState()
	c.prune = make(chan struct{}, 1)
	if o.Registry != nil {
		o.Registry.MustRegister(newFleetCollector(c))
	}
	return c
}

// ApplyResult says what an apply did.
type ApplyResult struct {
	Revision int64                        `json:"revision"`
	Hash     string                       `json:"hash"`
	Changed  bool                         `json:"changed"`
	Changes  []config.Change              `json:"changes,omitempty"`
	Outputs  map[string]map[string]string `json:"outputs,omitempty"`
	// Rollout is set when the revision goes out in stages.
	Rollout *store.Rollout `json:"rollout,omitempty"`
	// Impact (plan only) is what each change touches, in the order of
	// Changes.
	Impact []Impact `json:"impact,omitempty"`
}

// ErrInvalid wraps validation failures: nothing was written.
var ErrInvalid = errors.New("invalid desired state")

// Plan returns the changes applying snap would make, without writing.
func (c *Controller) Plan(ctx context.Context, snap *config.Snapshot) (*ApplyResult, error) {
	snap.SortDistributions() // what the API is given may come in any order
	if err := snap.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cur, _, err := c.store.Current(ctx)
	if err != nil {
		return nil, err
	}
	hash := config.Hash(snap)
	res := &ApplyResult{Hash: hash, Changes: config.Diff(cur, snap)}
	if cur != nil {
		res.Revision = cur.Revision
		res.Changed = cur.Hash != hash && len(res.Changes) > 0
	} else {
		res.Changed = true
	}
	if res.Impact, err = impactOf(orEmpty(cur), snap, res.Changes, c.healthView(ctx)); err != nil {
		return nil, err
	}
	return res, nil
}

// Apply writes snap as a new revision unless the current revision already
// has the same canonical hash (then it is a no-op that says so).
func (c *Controller) Apply(ctx context.Context, snap *config.Snapshot, reason string) (*ApplyResult, error) {
	return c.commit(ctx, throughStages, func(*config.Snapshot) (*config.Snapshot, string, error) { return snap, reason, nil })
}

// How a revision reaches the nodes: through the site's rollout stages, or
// at once (the emergency paths: rollback, auto-heal, a gate's rollback).
type delivery int

const (
	throughStages delivery = iota
	atOnce
)

// commit is the one path every revision goes through: it reads the current
// revision, lets edit derive the next desired state from it, validates,
// and writes a new revision with compare-and-swap, retrying on conflicts.
func (c *Controller) commit(ctx context.Context, how delivery, edit func(cur *config.Snapshot) (next *config.Snapshot, reason string, err error)) (*ApplyResult, error) {
	return c.commitWith(ctx, how, nil, edit)
}

// commitWith is commit with the rollout record to write when the revision
// goes out at once (nil: none).
func (c *Controller) commitWith(ctx context.Context, how delivery, record *store.Rollout, edit func(cur *config.Snapshot) (next *config.Snapshot, reason string, err error)) (*ApplyResult, error) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	for attempt := 0; ; attempt++ {
		ptr, _, err := c.store.Pointer(ctx)
		if err != nil {
			return nil, err
		}
		if how == throughStages {
			if err := refuseDuring(ptr.Rollout); err != nil {
				return nil, err
			}
		}
		cur, mod, err := c.store.Current(ctx)
		if err != nil {
			return nil, err
		}
		next, reason, err := edit(cur)
		if err != nil {
			return nil, err
		}
		next.SortDistributions() // what the API is given may come in any order
		if err := next.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		hash := config.Hash(next)
		res := &ApplyResult{Hash: hash, Changes: config.Diff(cur, next), Outputs: next.Outputs}
		if cur != nil && (cur.Hash == hash || len(res.Changes) == 0) {
			// No change. (A revision stored by a version that hashed
			// differently has another hash for the same content.)
			res.Revision, res.Hash = cur.Revision, cur.Hash
			return res, nil
		}
		out := *next
		out.Hash = hash
		out.Revision = 1
		if cur != nil {
			out.Revision = cur.Revision + 1
		}
		out.Time = time.Now().UTC().Truncate(time.Millisecond)
		out.Reason = reason
		ro := record
		if ro == nil && how == atOnce && ptr.Rollout != nil && ptr.Rollout.State == store.RolloutFailed {
			// An emergency change does not lift the freeze a failed
			// rollout left: only an operator does.
			frozen := *ptr.Rollout
			ro = &frozen
		}
		if ro != nil {
			ro.Revision, ro.From = out.Revision, out.Revision
		} else if how == throughStages && cur != nil {
			ro = c.startRollout(ctx, cur, &out)
		}
		err = c.store.Commit(ctx, &out, mod, ro)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		res.Revision, res.Changed = out.Revision, true
		c.metrics.revision.Set(float64(out.Revision))
		c.metrics.applies.Inc()
		c.committed()
		c.log.Info("revision committed", "revision", out.Revision, "hash", short(hash), "reason", reason)
		if ro != nil && ro.State == store.RolloutProgressing {
			res.Rollout = ro
			c.kickRollout()
		}
		return res, nil
	}
}

// Rollback re-applies revision rev (0: the newest earlier revision whose
// content differs from the current one) as a new revision, so that history
// only ever grows. It reaches every node at once unless staged.
func (c *Controller) Rollback(ctx context.Context, rev int64, staged bool) (*ApplyResult, error) {
	how := atOnce
	if staged {
		how = throughStages
	}
	return c.commit(ctx, how, func(cur *config.Snapshot) (*config.Snapshot, string, error) {
		if cur == nil {
			return nil, "", errors.New("nothing applied yet: no revision to roll back to")
		}
		target := rev
		if target == 0 {
			hist, err := c.store.History(ctx)
			if err != nil {
				return nil, "", err
			}
			for i := len(hist) - 1; i >= 0; i-- {
				if hist[i].Revision < cur.Revision && hist[i].Hash != cur.Hash {
					target = hist[i].Revision
					break
				}
			}
			if target == 0 {
				return nil, "", errors.New("no earlier revision with different content to roll back to")
			}
		}
		old, err := c.store.Revision(ctx, target)
		if err != nil {
			return nil, "", err
		}
		return old, fmt.Sprintf("rollback to revision %d", target), nil
	})
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Current returns the current desired snapshot (nil before the first apply).
func (c *Controller) Current(ctx context.Context) (*config.Snapshot, int64, error) {
	return c.store.Current(ctx)
}
