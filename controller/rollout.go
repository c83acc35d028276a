package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

// A revision goes out in the site's rollout stages. The stage's nodes are
// in the revision pointer (store.Rollout), so every node reads in one value
// whether it runs the new revision yet. One goroutine (RunRollouts) moves
// a rollout on: it waits for the stage's nodes to apply, watches them for
// the bake time, then widens the set; a failed gate rolls every node back
// at once and freezes applies until an operator resumes.

// ErrRolloutBusy: a rollout is in progress or failed, so a new revision
// would not be checked as the site asks.
var ErrRolloutBusy = errors.New("rollout")

// refuseDuring refuses a staged change while a rollout runs or after one
// failed.
func refuseDuring(ro *store.Rollout) error {
	if ro == nil {
		return nil
	}
	switch ro.State {
	case store.RolloutProgressing, store.RolloutPaused:
		return fmt.Errorf("%w: revision %d is %s at stage %d; wait for it (intercloud rollout status), or intercloud rollout abort",
			ErrRolloutBusy, ro.Revision, ro.State, ro.Stage+1)
	case store.RolloutFailed:
		return fmt.Errorf("%w: %s; applies are frozen until an operator runs intercloud rollout resume",
			ErrRolloutBusy, ro.Reason)
	}
	return nil
}

// rolloutState is what the rollout goroutine keeps between ticks: the
// nodes' reports over the last minutes, for the gates' "before" figures.
type rolloutState struct {
	kick chan struct{}

	mu      sync.Mutex
	samples map[string][]sample // node → oldest first
	// watch is the stage being judged: the live nodes at its start, what
	// they reported then, and when all of them had applied.
	watch *stageWatch
	// set is the last stage this controller started itself, with when on
	// its own clock: its apply timeout runs from there, not from the
	// record's wall-clock StageStarted.
	set stageMark
}

// stageMark is a stage start this controller wrote: the record's
// StageStarted (wall clock) and the same moment on the controller's clock.
type stageMark struct {
	revision int64
	stage    int
	wall, at time.Time
}

// started notes that this controller starts stage of revision at now; it
// returns the wall-clock time to record.
func (s *rolloutState) started(revision int64, stage int, now time.Time) time.Time {
	return s.startedAt(revision, stage, now, now.UTC())
}

// startedAt is started with the wall-clock reading apart (a test steps it).
func (s *rolloutState) startedAt(revision int64, stage int, at, wall time.Time) time.Time {
	s.mu.Lock()
	s.set = stageMark{revision: revision, stage: stage, wall: wall, at: at}
	s.mu.Unlock()
	return wall
}

type sample struct {
	at  time.Time
	rep status.RoleReport
}

type stageWatch struct {
	revision int64
	stage    int
	started  map[string]time.Time // node → process start at stage start
	applied  time.Time            // zero until every watched node applied
	base     map[string]sample    // node → its report when the bake began
	// began is when the stage started on this controller's clock: when it
	// started it itself, else its first sight less the record's age, taken
	// once (a stage in the future by the wall clock starts at first sight).
	// The apply timeout runs from it, so a step of the wall clock after
	// that neither fails a stage early nor gives it more time.
	began  time.Time
	before map[string]rates // node → its rates before the rollout
}

func newRolloutState() *rolloutState {
	return &rolloutState{kick: make(chan struct{}, 1), samples: map[string][]sample{}}
}

func (c *Controller) kickRollout() {
	select {
	case c.rollout.kick <- struct{}{}:
	default:
	}
}

// startRollout is the record of a new staged revision next: nil when the
// site asks for an immediate one.
func (c *Controller) startRollout(_ context.Context, cur, next *config.Snapshot) *store.Rollout {
	r := next.Site.Rollout
	if len(r.Stages) == 1 && r.Stages[0].Percent == 100 && r.Bake == 0 {
		return nil
	}
	now := c.rollout.started(next.Revision, 0, time.Now())
	return &store.Rollout{Revision: next.Revision, From: cur.Revision, Stage: 0, State: store.RolloutProgressing,
		Nodes: stageNodes(&next.Site, 0), Started: now, StageStarted: now}
}

// rolloutOrder is the order nodes join a rollout: canaries first, then by
// cloud and name.
func rolloutOrder(site *config.Site) []string {
	canary := map[string]bool{}
	for _, n := range canaries(site) {
		canary[n] = true
	}
	nodes := slices.Clone(site.Nodes)
	slices.SortStableFunc(nodes, func(a, b config.Node) int {
		if canary[a.Name] != canary[b.Name] {
			if canary[a.Name] {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Cloud, b.Cloud), cmp.Compare(a.Name, b.Name))
	})
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return names
}

// canaries are the nodes a {canary: true} stage reaches.
func canaries(site *config.Site) []string {
	c := site.Rollout.Canary
	if len(c.Nodes) > 0 {
		return c.Nodes
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range site.Nodes {
		pick := slices.Contains(c.Clouds, n.Cloud)
		if len(c.Clouds) == 0 && !seen[n.Cloud] { // the first node of each cloud
			pick = true
		}
		if pick {
			seen[n.Cloud] = true
			out = append(out, n.Name)
		}
	}
	return out
}

// stageNodes are the nodes that run the revision once stage i is reached;
// a stage never reaches fewer nodes than the one before it.
func stageNodes(site *config.Site, i int) []string {
	order := rolloutOrder(site)
	n := 0
	for _, st := range site.Rollout.Stages[:i+1] {
		switch {
		case st.Canary:
			n = max(n, len(canaries(site)))
		case st.Nodes > 0:
			n = max(n, st.Nodes)
		case st.Percent > 0:
			n = max(n, int(math.Ceil(float64(len(order))*float64(st.Percent)/100)))
		}
	}
	return slices.Clone(order[:min(n, len(order))])
}

// RunRollouts moves rollouts on until ctx ends.
func (c *Controller) RunRollouts(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.rollout.kick:
		}
		if err := c.stepRollout(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("rollout", "err", err)
		}
	}
}

// stepRollout samples the nodes and moves the current rollout on, if any.
func (c *Controller) stepRollout(ctx context.Context) error {
	live, err := c.store.Nodes(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	c.rollout.record(live, now)
	ptr, mod, err := c.store.Pointer(ctx)
	if err != nil || ptr.Rollout == nil || ptr.Rollout.State != store.RolloutProgressing {
		return err
	}
	ro := ptr.Rollout
	site, err := c.store.Site(ctx, ro.Revision)
	if err != nil {
		return err
	}
	r := site.Rollout
	w := c.rollout.watchFor(ro, live, now)
	if failed := c.rollout.judge(w, ro, &r, live, now); failed != "" {
		return c.failRollout(ctx, ro, fmt.Sprintf("rollback: stage %d gate failed: %s", ro.Stage+1, failed))
	}
	if w.applied.IsZero() || now.Sub(w.applied) < r.Bake.D() {
		return nil
	}
	next := *ro
	next.Stage++
	next.StageStarted = c.rollout.started(next.Revision, next.Stage, now)
	if next.Stage >= len(r.Stages) {
		next.State, next.Nodes = store.RolloutComplete, nil
		c.log.Info("rollout complete", "revision", ro.Revision, "took", now.Sub(ro.Started).Round(time.Millisecond))
	} else {
		next.Nodes = stageNodes(site, next.Stage)
		c.log.Info("rollout stage passed", "revision", ro.Revision, "stage", ro.Stage+1, "next", next.Stage+1, "nodes", len(next.Nodes))
	}
	ptr.Rollout = &next
	if err := c.store.SetRollout(ctx, ptr, mod); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	c.kickRollout()
	return nil
}

// failRollout rolls every node back to what the rollout started from, as
// a new revision that goes out at once, and freezes applies.
func (c *Controller) failRollout(ctx context.Context, ro *store.Rollout, reason string) error {
	c.log.Error("rollout failed; rolling back", "revision", ro.Revision, "to", ro.From, "reason", reason)
	record := &store.Rollout{State: store.RolloutFailed, Reason: reason, Started: ro.Started, StageStarted: time.Now().UTC(), Stage: ro.Stage}
	_, err := c.commitWith(ctx, atOnce, record, func(*config.Snapshot) (*config.Snapshot, string, error) {
		old, err := c.store.Revision(ctx, ro.From)
		return old, reason, err
	})
	return err
}

// RolloutAction is pause, resume or abort.
func (c *Controller) RolloutAction(ctx context.Context, action string) (*store.Rollout, error) {
	ptr, mod, err := c.store.Pointer(ctx)
	if err != nil {
		return nil, err
	}
	ro := ptr.Rollout
	if ro == nil {
		return nil, errors.New("no rollout: the current revision went out at once")
	}
	next := *ro
	switch {
	case action == "pause" && ro.State == store.RolloutProgressing:
		next.State = store.RolloutPaused
	case action == "resume" && ro.State == store.RolloutPaused:
		// The stage is judged afresh: its bake starts again.
		next.State, next.StageStarted = store.RolloutProgressing, c.rollout.started(ro.Revision, ro.Stage, time.Now())
		c.rollout.mu.Lock()
		c.rollout.watch = nil
		c.rollout.mu.Unlock()
	case action == "resume" && ro.State == store.RolloutFailed:
		next.State = store.RolloutComplete
		next.Reason = "resumed by an operator after: " + ro.Reason
	case action == "abort" && (ro.State == store.RolloutProgressing || ro.State == store.RolloutPaused):
		reason := fmt.Sprintf("rollback: rollout of revision %d aborted by an operator", ro.Revision)
		_, err := c.commitWith(ctx, atOnce, &store.Rollout{State: store.RolloutAborted, Reason: reason, Started: ro.Started},
			func(*config.Snapshot) (*config.Snapshot, string, error) {
				old, err := c.store.Revision(ctx, ro.From)
				return old, reason, err
			})
		if err != nil {
			return nil, err
		}
		ptr, _, err := c.store.Pointer(ctx)
		return ptr.Rollout, err
	default:
		return nil, fmt.Errorf("cannot %s a rollout that is %s", action, ro.State)
	}
	ptr.Rollout = &next
	if err := c.store.SetRollout(ctx, ptr, mod); err != nil {
		return nil, err
	}
	c.kickRollout()
	c.log.Info("rollout "+action, "revision", ro.Revision, "state", next.State)
	return &next, nil
}

// record keeps each live node's report for the "before" figures.
func (s *rolloutState) record(live map[string]status.NodeStatus, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const keep = 5 * time.Minute
	for name, st := range live {
		ss := s.samples[name]
		if n := len(ss); n > 0 && sameCounts(ss[n-1].rep, st.Report) {
			continue // unchanged since the last refresh
		}
		i := 0
		for i < len(ss) && now.Sub(ss[i].at) > keep {
			i++
		}
		s.samples[name] = append(ss[i:], sample{at: now, rep: st.Report})
	}
}

func sameCounts(a, b status.RoleReport) bool {
	return a.Requests == b.Requests && a.Errors5xx == b.Errors5xx && a.OriginFetches == b.OriginFetches &&
		a.OriginErrors == b.OriginErrors && a.Queries == b.Queries && a.Servfail == b.Servfail
}

// watchFor returns the watch of the rollout's current stage, starting it
// when the stage is new to this controller.
func (s *rolloutState) watchFor(ro *store.Rollout, live map[string]status.NodeStatus, now time.Time) *stageWatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watch; w != nil && w.revision == ro.Revision && w.stage == ro.Stage {
		return w
	}
	w := &stageWatch{revision: ro.Revision, stage: ro.Stage, started: map[string]time.Time{},
		base: map[string]sample{}, before: map[string]rates{}}
	if m := s.set; m.revision == ro.Revision && m.stage == ro.Stage && m.wall.Equal(ro.StageStarted) {
		w.began = m.at
	} else {
		w.began = now.Add(-max(now.Sub(ro.StageStarted), 0))
	}
	for _, n := range ro.Nodes {
		if st, ok := live[n]; ok {
			w.started[n] = st.Started
			w.before[n] = s.ratesBefore(n, ro.Started)
		}
	}
	s.watch = w
	return w
}

// ratesBefore are a node's rates over the minute before t.
func (s *rolloutState) ratesBefore(node string, t time.Time) rates {
	ss := s.samples[node]
	var from, to *sample
	for i := range ss {
		if ss[i].at.After(t) {
			break
		}
		if from == nil && t.Sub(ss[i].at) <= time.Minute {
			from = &ss[i]
		}
		to = &ss[i]
	}
	if from == nil || to == nil {
		return rates{}
	}
	return ratesBetween(from.rep, to.rep, 0)
}

// rates are error shares in percent; ok* says there were enough requests
// to judge them.
type rates struct {
	e5xx, origin, servfail      float64
	ok5xx, okOrigin, okServfail bool
}

func share(part, whole, min int64) (float64, bool) {
	if whole <= 0 || whole < min {
		return 0, false
	}
	return 100 * float64(part) / float64(whole), true
}

func ratesBetween(a, b status.RoleReport, minRequests int64) rates {
	var r rates
	r.e5xx, r.ok5xx = share(b.Errors5xx-a.Errors5xx, b.Requests-a.Requests, minRequests)
	r.origin, r.okOrigin = share(b.OriginErrors-a.OriginErrors, b.OriginFetches-a.OriginFetches, minRequests)
	r.servfail, r.okServfail = share(b.Servfail-a.Servfail, b.Queries-a.Queries, minRequests)
	return r
}

// judge returns why the stage fails now, or "" while it holds. It also
// notes when every watched node has applied, which starts the bake.
func (s *rolloutState) judge(w *stageWatch, ro *store.Rollout, r *config.Rollout, live map[string]status.NodeStatus, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var failures []string
	applied := true
	for _, n := range slices.Sorted(maps.Keys(w.started)) {
		st, ok := live[n]
		switch {
		case !ok:
			failures = append(failures, n+" went down")
			continue
		case !st.Started.Equal(w.started[n]):
			failures = append(failures, n+" restarted")
			continue
		case strings.Contains(st.Message, fmt.Sprintf("revision %d not applied", ro.Revision)):
			failures = append(failures, fmt.Sprintf("%s did not apply revision %d: %s", n, ro.Revision, st.Message))
			continue
		case st.Revision != ro.Revision:
			applied = false
			continue
		case !st.Healthy && !w.applied.IsZero():
			failures = append(failures, fmt.Sprintf("%s not ready: %s", n, st.Message))
			continue
		case !st.Healthy:
			applied = false
			continue
		}
		if w.applied.IsZero() {
			continue
		}
		base, ok := w.base[n]
		if !ok {
			continue
		}
		now := ratesBetween(base.rep, st.Report, r.Gates.MinRequests)
		before := w.before[n]
		check := func(what string, v float64, ok bool, limit, was float64) {
			if ok && v > limit && v > 2*was {
				failures = append(failures, fmt.Sprintf("%s %s %.1f%% > %g%% (before %.1f%%)", n, what, v, limit, was))
			}
		}
		check("5xx", now.e5xx, now.ok5xx, r.Gates.Max5xxPercent, before.e5xx)
		check("origin errors", now.origin, now.okOrigin, r.Gates.MaxOriginErrorPercent, before.origin)
		check("SERVFAIL", now.servfail, now.okServfail, r.Gates.MaxServfailPercent, before.servfail)
	}
	if len(failures) > 0 {
		return strings.Join(failures, "; ")
	}
	if w.applied.IsZero() {
		if applied {
			w.applied = now
			for n := range w.started {
				w.base[n] = sample{at: now, rep: live[n].Report}
			}
		} else if r.ApplyTimeout > 0 && now.Sub(w.began) > r.ApplyTimeout.D() {
			var late []string
			for n := range w.started {
				if st := live[n]; st.Revision != ro.Revision || !st.Healthy {
					late = append(late, n)
				}
			}
			slices.Sort(late)
			return fmt.Sprintf("%s did not run revision %d within %s", strings.Join(late, ", "), ro.Revision, r.ApplyTimeout)
		}
	}
	return ""
}
