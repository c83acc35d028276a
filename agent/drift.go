package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

// driftTimeout bounds one check (every role's Drift and the heals): it runs
// on the loop, which must not wait on a stuck role for long.
var driftTimeout = 20 * time.Second // a var: tests shorten it

// A check can find thousands of resources (every route of a full table
// deleted): the node's status carries the first statusResources (a store
// value must stay small; GET /v1/drift on the node has them all) and the
// log names the first logResources of each check.
const (
	statusResources = 100
	logResources    = 20
)

// drift is the loop's drift state: what the last check found, since when
// each resource has been drifted, and the heals within the policy window.
type drift struct {
	last  *status.DriftReport
	since map[string]time.Time
	heals healLimiter
	// suspended holds the resources whose suspension is recorded already.
	suspended map[string]bool
	events    chan status.DriftEvent // to the store, by writeDriftEvents
	flight    singleflight.Group     // on-demand checks asked together

	resources *prometheus.GaugeVec
	healsDone *prometheus.CounterVec
}

func newDrift(reg prometheus.Registerer) *drift {
	d := &drift{
		since:     map[string]time.Time{},
		heals:     healLimiter{},
		suspended: map[string]bool{},
		events:    make(chan status.DriftEvent, 64),
		resources: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "intercloud_drift_resources",
			Help: "Resources owned by the node's roles whose real state differs from the desired one, at the last drift check (healed ones excluded).",
		}, []string{"kind"}),
		healsDone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_drift_heals_total",
			Help: "Drifted resources the node tried to put back, by result (healed, heal-failed) and those left alone because healing was suspended.",
		}, []string{"kind", "result"}),
	}
	for _, k := range config.DriftKinds {
		d.resources.WithLabelValues(string(k)).Set(0)
	}
	reg.MustRegister(d.resources, d.healsDone)
	return d
}

// healLimiter counts heals per resource within the policy window, so a
// fight with another tool (a config manager putting its own value back)
// stops after MaxHeals instead of looping.
type healLimiter map[string][]time.Time

// allow reports whether key may be healed at now, forgetting heals older
// than window; when it may not, until is when it may again.
func (l healLimiter) allow(key string, now time.Time, max int, window time.Duration) (ok bool, until time.Time) {
	ts := slices.DeleteFunc(l[key], func(t time.Time) bool { return now.Sub(t) >= window })
	if len(ts) == 0 {
		delete(l, key)
	} else {
		l[key] = ts
	}
	if len(ts) < max {
		return true, time.Time{}
	}
	return false, ts[0].Add(window)
}

func (l healLimiter) record(key string, now time.Time) { l[key] = append(l[key], now) }

// prune forgets the resources whose heals all left the window.
func (l healLimiter) prune(now time.Time, window time.Duration) {
	for key, ts := range l {
		if now.Sub(ts[len(ts)-1]) >= window {
			delete(l, key)
		}
	}
}

// found is one drifted resource and the role that owns it.
type found struct {
	status.DriftResource
	by role.Drifter
}

// checkDrift asks every role that owns outside resources what differs from
// the running revision, heals what the site's policy says to heal (within
// its rate limit), and publishes the result in the node's status.
func (a *Agent) checkDrift(ctx context.Context) status.DriftReport {
	now := time.Now().UTC()
	rep := status.DriftReport{Checked: now}
	if a.applied == nil {
		rep.Error = "no revision applied yet"
		return rep
	}
	policy := a.applied.Site.Drift
	ctx, cancel := context.WithTimeout(ctx, driftTimeout)
	defer cancel()
	all, errs := a.collectDrift(ctx)
	healedAny := map[role.Drifter]bool{}
	for i := range all {
		r := &all[i]
		key := r.Key()
		if _, ok := a.drift.since[key]; !ok {
			a.drift.since[key] = now
		}
		r.Since = a.drift.since[key]
		if !policy.Heals(r.Kind) {
			r.State = status.DriftReported
			continue
		}
		if ctx.Err() != nil {
			// The check's time is up: what is left is reported, and healed
			// by the next check, instead of holding the node's loop.
			r.State, r.Message = status.DriftHealError, fmt.Sprintf("not healed: the drift check ran out of its %v", driftTimeout)
			continue
		}
		ok, until := a.drift.heals.allow(key, now, policy.MaxHeals, policy.Window.D())
		if !ok {
			r.State = status.DriftSuspended
			r.Message = fmt.Sprintf("%d heals within %v: fighting with another tool, healing suspended until %s",
				policy.MaxHeals, policy.Window.D(), until.Format(time.RFC3339))
			a.drift.healsDone.WithLabelValues(r.Kind, r.State).Inc()
			continue
		}
		a.drift.heals.record(key, now)
		if err := a.heal(ctx, r.by, r.DriftResource); err != nil {
			r.State, r.Message = status.DriftHealError, err.Error()
		} else {
			r.State = status.DriftHealed
			healedAny[r.by] = true
		}
	}
	// A heal is only as good as what the role sees afterwards: look again.
	if len(healedAny) > 0 {
		again, _ := a.collectDriftOf(ctx, healedAny)
		still := map[string]string{}
		for _, r := range again {
			still[r.Key()] = r.Actual
		}
		for i := range all {
			if act, ok := still[all[i].Key()]; ok && all[i].State == status.DriftHealed {
				all[i].State, all[i].Message = status.DriftHealError, "still differs after the heal: "+act
			}
		}
	}
	seen := map[string]bool{}
	counts := map[string]int{}
	logged, dropped := 0, 0
	for _, r := range all {
		seen[r.Key()] = true
		if r.State != status.DriftSuspended {
			delete(a.drift.suspended, r.Key())
		}
		if r.State == status.DriftHealed {
			delete(a.drift.since, r.Key()) // the episode is over
		} else {
			counts[r.Kind]++
		}
		if r.State != status.DriftReported && !a.driftEvent(r.DriftResource, now) {
			dropped++
		}
		// Every check while it lasts would flood the log: only news.
		if r.State != status.DriftHealed && r.Since.Equal(now) {
			if logged++; logged <= logResources {
				a.log.Warn("drift", "kind", r.Kind, "id", r.ID, "expected", r.Expected, "actual", r.Actual, "state", r.State, "message", r.Message)
			}
		}
		rep.Resources = append(rep.Resources, r.DriftResource)
	}
	if logged > logResources {
		a.log.Warn("drift: more resources drifted than logged", "more", logged-logResources, "see", "intercloud drift "+a.opt.Node)
	}
	if dropped > 0 {
		a.log.Warn("drift: event log queue full; events not recorded", "events", dropped)
	}
	for key := range a.drift.since {
		if !seen[key] {
			delete(a.drift.since, key)
		}
	}
	for key := range a.drift.suspended {
		if !seen[key] {
			delete(a.drift.suspended, key)
		}
	}
	a.drift.heals.prune(now, policy.Window.D())
	for _, k := range config.DriftKinds {
		a.drift.resources.WithLabelValues(string(k)).Set(float64(counts[string(k)]))
	}
	if err := errors.Join(errs...); err != nil {
		rep.Error = err.Error()
	}
	a.drift.last = &rep
	a.report()
	return rep
}

// collectDrift asks every running Drifter, in role order.
func (a *Agent) collectDrift(ctx context.Context) ([]found, []error) {
	return a.collectDriftOf(ctx, nil)
}

// collectDriftOf asks the running Drifters (only those in only, when set).
func (a *Agent) collectDriftOf(ctx context.Context, only map[role.Drifter]bool) ([]found, []error) {
	var all []found
	var errs []error
	for _, inst := range a.view.Load().roles {
		d, ok := inst.role.(role.Drifter)
		if !ok || (only != nil && !only[d]) {
			continue
		}
		rs, err := driftOf(ctx, inst.kind, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", inst.kind, err))
		}
		for _, r := range rs {
			all = append(all, found{DriftResource: r, by: d})
		}
	}
	slices.SortFunc(all, func(x, y found) int { return strings.Compare(x.Key(), y.Key()) })
	return all, errs
}

// driftOf is a role's Drift; a panic there is that check's error.
func driftOf(ctx context.Context, kind config.Role, d role.Drifter) (rs []status.DriftResource, err error) {
	defer recoverAs(&err, "role %s: drift", kind)
	return d.Drift(ctx)
}

func (a *Agent) heal(ctx context.Context, d role.Drifter, r status.DriftResource) (err error) {
	defer recoverAs(&err, "heal %s %s", r.Kind, r.ID)
	if err = d.Heal(ctx, r); err != nil {
		a.log.Error("drift: heal failed", "kind", r.Kind, "id", r.ID, "err", err)
		return err
	}
	a.log.Info("drift: healed", "kind", r.Kind, "id", r.ID, "expected", r.Expected, "was", r.Actual)
	return nil
}

// driftEvent counts a heal (or a suspension, once per episode) and queues
// it for the store's event log; false when the queue was full.
func (a *Agent) driftEvent(r status.DriftResource, now time.Time) bool {
	if r.State == status.DriftSuspended {
		if a.drift.suspendedLogged(r.Key()) {
			return true
		}
	} else {
		a.drift.healsDone.WithLabelValues(r.Kind, r.State).Inc()
	}
	ev := status.DriftEvent{Time: now, Node: a.opt.Node, Kind: r.Kind, ID: r.ID, Expected: r.Expected, Actual: r.Actual,
		State: r.State, Message: r.Message}
	select {
	case a.drift.events <- ev:
		return true
	default:
		return false
	}
}

// suspendedLogged reports whether the suspension of key was already
// recorded in this episode, and marks it recorded.
func (d *drift) suspendedLogged(key string) bool {
	if d.suspended[key] {
		return true
	}
	d.suspended[key] = true
	return false
}

// writeDriftEvents records heals in the store's event log, beside the
// loop so that a store outage never holds up a check.
func (a *Agent) writeDriftEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.drift.events:
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := a.opt.Store.PutDriftEvent(wctx, ev)
			cancel()
			if err != nil && ctx.Err() == nil {
				a.log.Warn("drift: event not recorded in the store", "kind", ev.Kind, "id", ev.ID, "state", ev.State, "err", err)
			}
		}
	}
}

// driftInterval is the running revision's check interval.
func (a *Agent) driftInterval() time.Duration {
	if a.applied != nil && a.applied.Site.Drift.Interval > 0 {
		return a.applied.Site.Drift.Interval.D()
	}
	return config.DefaultDriftInterval.D()
}

// driftRequest is an on-demand check from the admin API.
type driftRequest chan status.DriftReport

func (driftRequest) isEvent() {}

// serveDriftCheck is POST /v1/drift/check: a check now, answered with its
// report once it is done. Requests that arrive together share one check,
// so a burst of them costs the loop one.
func (a *Agent) serveDriftCheck(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ch := a.drift.flight.DoChan("check", func() (any, error) {
		// The first request's lifetime bounds the shared wait: once the
		// agent stops, nothing takes the event.
		reply := make(driftRequest, 1)
		select {
		case a.events <- reply:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case rep := <-reply:
			return rep, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			http.Error(w, "drift check abandoned: "+res.Err.Error()+"; ask again", http.StatusServiceUnavailable)
			return
		}
		writeDriftJSON(w, res.Val.(status.DriftReport))
	case <-ctx.Done():
	}
}

// serveDrift is GET /v1/drift: the last check's report.
func (a *Agent) serveDrift(w http.ResponseWriter, _ *http.Request) {
	rep := a.view.Load().drift
	if rep == nil {
		rep = &status.DriftReport{Error: "no drift check yet"}
	}
	writeDriftJSON(w, *rep)
}

func writeDriftJSON(w http.ResponseWriter, rep status.DriftReport) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}

// capped is rep with at most statusResources resources, the ones still
// drifted first.
func capped(rep *status.DriftReport) *status.DriftReport {
	if rep == nil || len(rep.Resources) <= statusResources {
		return rep
	}
	c := *rep
	rs := slices.Clone(rep.Resources)
	slices.SortStableFunc(rs, func(x, y status.DriftResource) int {
		return cmp.Compare(boolInt(x.State == status.DriftHealed), boolInt(y.State == status.DriftHealed))
	})
	c.Resources, c.More = rs[:statusResources], rep.More+len(rs)-statusResources
	return &c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
