package controller

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

func rolloutSite(r config.Rollout) *config.Site {
	s := &config.Site{Rollout: r}
	for _, n := range []struct{ name, cloud string }{{"s2", "seoul"}, {"s1", "seoul"}, {"t1", "tokyo"}, {"t2", "tokyo"}, {"t3", "tokyo"}, {"v1", "virginia"}, {"v2", "virginia"}, {"v3", "virginia"}} {
		s.Nodes = append(s.Nodes, config.Node{Name: n.name, Cloud: n.cloud})
		if s.Cloud(n.cloud) == nil {
			s.Clouds = append(s.Clouds, config.Cloud{Name: n.cloud})
		}
	}
	return s
}

func TestStageNodes(t *testing.T) {
	fleet := []config.RolloutStage{{Canary: true}, {Percent: 25}, {Percent: 100}}
	for _, tc := range []struct {
		name    string
		rollout config.Rollout
		want    [][]string
	}{
		{"one canary per cloud, then a quarter, then all", config.Rollout{Stages: fleet},
			[][]string{{"s2", "t1", "v1"}, {"s2", "t1", "v1"}, {"s2", "t1", "v1", "s1", "t2", "t3", "v2", "v3"}}},
		{"canaries by name", config.Rollout{Stages: fleet, Canary: config.CanaryNodes{Nodes: []string{"v3"}}},
			[][]string{{"v3"}, {"v3", "s1"}, {"v3", "s1", "s2", "t1", "t2", "t3", "v1", "v2"}}},
		{"canaries by cloud", config.Rollout{Stages: []config.RolloutStage{{Canary: true}, {Nodes: 4}, {Percent: 100}},
			Canary: config.CanaryNodes{Clouds: []string{"tokyo"}}},
			[][]string{{"t1", "t2", "t3"}, {"t1", "t2", "t3", "s1"}, {"t1", "t2", "t3", "s1", "s2", "v1", "v2", "v3"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := rolloutSite(tc.rollout)
			for i, want := range tc.want {
				if got := stageNodes(site, i); !slices.Equal(got, want) {
					t.Errorf("stage %d: %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestGates(t *testing.T) {
	r := &config.Rollout{ApplyTimeout: config.Duration(time.Minute), Gates: config.RolloutGates{
		Max5xxPercent: 1, MaxOriginErrorPercent: 5, MaxServfailPercent: 1, MinRequests: 20}}
	t0 := time.Now()
	started := t0.Add(-time.Hour)
	ro := &store.Rollout{Revision: 7, From: 6, Nodes: []string{"e1"}, State: store.RolloutProgressing, StageStarted: t0}
	up := func(rev int64, rep status.RoleReport) status.NodeStatus {
		return status.NodeStatus{Name: "e1", Revision: rev, Healthy: true, Started: started, Report: rep}
	}
	for _, tc := range []struct {
		name   string
		before rates
		now    status.NodeStatus // at the judging tick, after a base of zero counts
		dead   bool
		want   string
	}{
		{"clean", rates{}, up(7, status.RoleReport{Requests: 100, Errors5xx: 0}), false, ""},
		{"5xx above the limit", rates{}, up(7, status.RoleReport{Requests: 100, Errors5xx: 12}), false, "e1 5xx 12.0% > 1% (before 0.0%)"},
		{"too few requests to judge", rates{}, up(7, status.RoleReport{Requests: 10, Errors5xx: 9}), false, ""},
		{"no worse than before the change", rates{e5xx: 10, ok5xx: true}, up(7, status.RoleReport{Requests: 100, Errors5xx: 12}), false, ""},
		{"origin errors", rates{}, up(7, status.RoleReport{OriginFetches: 50, OriginErrors: 10}), false, "e1 origin errors 20.0% > 5%"},
		{"servfail", rates{}, up(7, status.RoleReport{Queries: 1000, Servfail: 50}), false, "e1 SERVFAIL 5.0% > 1%"},
		{"restarted", rates{}, status.NodeStatus{Name: "e1", Revision: 7, Healthy: true, Started: t0}, false, "e1 restarted"},
		{"went down", rates{}, status.NodeStatus{}, true, "e1 went down"},
		{"not ready", rates{}, status.NodeStatus{Name: "e1", Revision: 7, Started: started, Message: "edge: listener stopped"}, false, "e1 not ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newRolloutState()
			w := s.watchFor(ro, map[string]status.NodeStatus{"e1": up(7, status.RoleReport{})}, t0)
			w.before["e1"] = tc.before
			// First tick: applied, the bake starts from zero counts.
			if got := s.judge(w, ro, r, map[string]status.NodeStatus{"e1": up(7, status.RoleReport{})}, t0); got != "" || w.applied.IsZero() {
				t.Fatalf("first tick: %q, applied %v", got, w.applied)
			}
			live := map[string]status.NodeStatus{"e1": tc.now}
			if tc.dead {
				live = map[string]status.NodeStatus{}
			}
			got := s.judge(w, ro, r, live, t0.Add(time.Second))
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("judge: %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStageApplyFailures(t *testing.T) {
	r := &config.Rollout{ApplyTimeout: config.Duration(10 * time.Second)}
	t0 := time.Now()
	ro := &store.Rollout{Revision: 7, From: 6, Nodes: []string{"e1"}, State: store.RolloutProgressing, StageStarted: t0}
	st := status.NodeStatus{Name: "e1", Revision: 6, Healthy: false, Started: t0,
		Message: "revision 7 not applied, still serving revision 6: edge: listen 127.0.0.1:80: bind: address already in use"}
	s := newRolloutState()
	w := s.watchFor(ro, map[string]status.NodeStatus{"e1": st}, t0)
	if got := s.judge(w, ro, r, map[string]status.NodeStatus{"e1": st}, t0); !strings.Contains(got, "e1 did not apply revision 7") {
		t.Fatalf("a node that failed to apply: %q", got)
	}
	slow := status.NodeStatus{Name: "e1", Revision: 6, Healthy: true, Started: t0}
	if got := s.judge(w, ro, r, map[string]status.NodeStatus{"e1": slow}, t0.Add(5*time.Second)); got != "" {
		t.Fatalf("a node still applying within the timeout: %q", got)
	}
	if got := s.judge(w, ro, r, map[string]status.NodeStatus{"e1": slow}, t0.Add(11*time.Second)); !strings.Contains(got, "did not run revision 7 within 10s") {
		t.Fatalf("a node past the apply timeout: %q", got)
	}
}

// The apply timeout runs on the controller's clock from the stage's start:
// a stage record whose wall-clock StageStarted is off by a step of the
// wall clock neither fails early nor gets more time.
func TestStageApplyTimeoutOnControllerClock(t *testing.T) {
	r := &config.Rollout{ApplyTimeout: config.Duration(time.Minute)}
	t0 := time.Now()
	slow := map[string]status.NodeStatus{"e1": {Name: "e1", Revision: 6, Healthy: true, Started: t0}}
	judgeAt := func(s *rolloutState, ro *store.Rollout, first time.Time, at ...time.Duration) []string {
		w := s.watchFor(ro, slow, first)
		var out []string
		for _, d := range at {
			out = append(out, s.judge(w, ro, r, slow, t0.Add(d)))
		}
		return out
	}
	t.Run("a stage this controller started", func(t *testing.T) {
		s := newRolloutState()
		// The wall clock stepped forward 30 s right after the start: the
		// record's StageStarted reads 30 s before the start on the
		// controller's clock. Only the controller's clock counts.
		wall := s.startedAt(7, 0, t0, t0.Add(-30*time.Second).UTC())
		ro := &store.Rollout{Revision: 7, From: 6, Nodes: []string{"e1"}, State: store.RolloutProgressing, StageStarted: wall}
		got := judgeAt(s, ro, t0.Add(time.Second), 35*time.Second, 59*time.Second, 61*time.Second)
		if got[0] != "" || got[1] != "" || !strings.Contains(got[2], "within 1m0s") {
			t.Fatalf("at 35 s, 59 s and 61 s: %q", got)
		}
		// A record this controller did not write (another stage start):
		// its wall-clock age at first sight counts.
		ro.StageStarted = t0.Add(-10 * time.Second).UTC()
		got = judgeAt(newRolloutState(), ro, t0, 49*time.Second, 51*time.Second)
		if got[0] != "" || !strings.Contains(got[1], "within 1m0s") {
			t.Fatalf("10 s old at first sight, judged 49 s and 51 s later: %q", got)
		}
	})
	t.Run("a stage another controller started", func(t *testing.T) {
		ro := &store.Rollout{Revision: 7, From: 6, Nodes: []string{"e1"}, State: store.RolloutProgressing, StageStarted: t0.Add(-20 * time.Second).UTC()}
		got := judgeAt(newRolloutState(), ro, t0, 39*time.Second, 41*time.Second)
		if got[0] != "" || !strings.Contains(got[1], "within 1m0s") {
			t.Fatalf("20 s old at first sight, judged 39 s and 41 s later: %q", got)
		}
		// Stamped 30 s in the future (its writer's clock was ahead): it
		// starts at first sight, not 30 s later.
		ro.StageStarted = t0.Add(30 * time.Second).UTC()
		got = judgeAt(newRolloutState(), ro, t0, 59*time.Second, 61*time.Second)
		if got[0] != "" || !strings.Contains(got[1], "within 1m0s") {
			t.Fatalf("in the future at first sight, judged 59 s and 61 s later: %q", got)
		}
	})
}
