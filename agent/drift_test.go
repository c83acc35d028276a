package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

func TestHealLimiter(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const window = 10 * time.Minute
	cases := []struct {
		name  string
		heals []time.Duration // after t0, recorded when allowed
		at    time.Duration
		max   int
		want  bool
	}{
		{"none yet", nil, 0, 3, true},
		{"below the limit", []time.Duration{0, time.Minute}, 2 * time.Minute, 3, true},
		{"at the limit", []time.Duration{0, time.Minute, 2 * time.Minute}, 3 * time.Minute, 3, false},
		{"the oldest left the window", []time.Duration{0, time.Minute, 2 * time.Minute}, window, 3, true},
		{"max one", []time.Duration{0}, time.Second, 1, false},
		{"all left the window", []time.Duration{0, time.Minute}, window + 2*time.Minute, 3, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := healLimiter{}
			for _, h := range c.heals {
				if ok, _ := l.allow("k", t0.Add(h), c.max, window); !ok {
					t.Fatalf("heal at %v refused", h)
				}
				l.record("k", t0.Add(h))
			}
			ok, until := l.allow("k", t0.Add(c.at), c.max, window)
			if ok != c.want {
				t.Fatalf("allow at %v = %v, want %v", c.at, ok, c.want)
			}
			if !ok && !until.Equal(t0.Add(c.heals[len(c.heals)-c.max]).Add(window)) {
				t.Errorf("suspended until %v", until)
			}
			if ok2, _ := l.allow("other", t0.Add(c.at), c.max, window); !ok2 {
				t.Error("another resource is limited too")
			}
			l.prune(t0.Add(c.at), window)
			if _, kept := l["k"]; kept != (len(c.heals) > 0 && c.heals[len(c.heals)-1] > c.at-window) {
				t.Errorf("after prune: %v", l)
			}
		})
	}
}

// checkDriftNow is `intercloud drift --check` against a node: one check,
// on demand, answered when done.
func checkDriftNow(t *testing.T, admin string) status.DriftReport {
	t.Helper()
	resp, err := http.Post("http://"+admin+"/v1/drift/check", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep status.DriftReport
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/drift/check: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// An operator edits a file of the origin's active version: the node
// reports it at its next check, puts it back when the site says to heal
// files and records the heal, and stops after maxHeals when something
// keeps changing it (a fight), saying so in its status.
func TestDriftOriginFileHealAndFight(t *testing.T) {
	root, st, adminAddr := startOriginNode(t)
	ctx := t.Context()

	// The periodic check is an hour away: every check here is on demand.
	p := siteParams{Rev: 1, Roles: "origin", Origin: true, Root: root, OriginListen: storetest.FreeAddr(t),
		HTTP: storetest.FreeAddr(t), DNS: storetest.FreeAddr(t), Upstream: "http://127.0.0.1:9",
		Drift: "{interval: 1h, heal: [file], maxHeals: 2, window: 1h}"}
	commitSite(t, st, p)
	storetest.Eventually(t, 15*time.Second, "origin serves revision 1", func() bool { return probeOrigin(t, p) == 1 })

	if rep := checkDriftNow(t, adminAddr); len(rep.Resources) != 0 || rep.Error != "" {
		t.Fatalf("fresh node drifted: %+v", rep)
	}
	file := filepath.Join(root, "v1", "index.html")
	deface := func() {
		if err := os.WriteFile(file, []byte("defaced!"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		deface()
		rep := checkDriftNow(t, adminAddr)
		if len(rep.Resources) != 1 || rep.Resources[0].ID != "v1/index.html" || rep.Resources[0].State != status.DriftHealed {
			t.Fatalf("heal %d: %+v", i+1, rep)
		}
		if b, _ := os.ReadFile(file); string(b) != "hi" {
			t.Fatalf("heal %d: file holds %q", i+1, b)
		}
	}
	deface()
	rep := checkDriftNow(t, adminAddr)
	if len(rep.Resources) != 1 || rep.Resources[0].State != status.DriftSuspended || !strings.Contains(rep.Resources[0].Message, "fighting with another tool") {
		t.Fatalf("third change within the window: %+v", rep)
	}
	if b, _ := os.ReadFile(file); string(b) != "defaced!" {
		t.Fatalf("healed past the limit: %q", b)
	}
	storetest.Eventually(t, 15*time.Second, "the node's status says it drifted", func() bool {
		n, _ := st.Nodes(ctx)
		s := n["n1"]
		return s.Drifted == 1 && s.Drift != nil && s.Drift.Resources[0].State == status.DriftSuspended && s.Healthy
	})
	// Drift is shown, not unreadiness.
	if resp, err := http.Get("http://" + adminAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz while drifted: %v %v", resp, err)
	}
	storetest.Eventually(t, 15*time.Second, "two heals and the suspension in the event log", func() bool {
		evs, err := st.DriftEvents(ctx, "n1", 0)
		if err != nil || len(evs) != 3 {
			return false
		}
		return evs[0].State == status.DriftSuspended && evs[1].State == status.DriftHealed && evs[2].State == status.DriftHealed &&
			evs[2].Kind == status.DriftFile && evs[2].Actual != "" && evs[2].Node == "n1"
	})

	// Report only: a revision that heals nothing leaves the file as found.
	p.Rev, p.Drift = 2, "{interval: 1h}"
	commitSite(t, st, p)
	storetest.Eventually(t, 15*time.Second, "origin serves revision 2", func() bool { return probeOrigin(t, p) == 2 })
	rep = checkDriftNow(t, adminAddr)
	if len(rep.Resources) != 1 || rep.Resources[0].State != status.DriftReported || rep.Resources[0].Actual == "" {
		t.Fatalf("report only: %+v", rep)
	}
	if b, _ := os.ReadFile(file); string(b) != "defaced!" {
		t.Fatalf("healed with a report-only policy: %q", b)
	}
	// The metric the dashboards read.
	if got := gaugeValue(t, adminAddr, `intercloud_drift_resources{kind="file"}`); got != "1" {
		t.Errorf("intercloud_drift_resources{kind=\"file\"} = %q", got)
	}
	if got := gaugeValue(t, adminAddr, `intercloud_drift_resources{kind="route"}`); got != "0" {
		t.Errorf("intercloud_drift_resources{kind=\"route\"} = %q", got)
	}
}

func gaugeValue(t *testing.T, admin, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// A node's status carries at most statusResources resources, those still
// drifted first, and says how many it left out.
func TestCappedReport(t *testing.T) {
	rep := &status.DriftReport{}
	for i := range statusResources + 5 {
		st := status.DriftHealed
		if i >= statusResources { // the last ones are the unresolved ones
			st = status.DriftReported
		}
		rep.Resources = append(rep.Resources, status.DriftResource{Kind: "route", ID: strconv.Itoa(i), State: st})
	}
	c := capped(rep)
	if len(c.Resources) != statusResources || c.More != 5 || len(rep.Resources) != statusResources+5 {
		t.Fatalf("capped to %d, more %d (original now %d)", len(c.Resources), c.More, len(rep.Resources))
	}
	for _, r := range c.Resources[:5] {
		if r.State != status.DriftReported {
			t.Fatalf("unresolved resources left out: %+v", c.Resources[:6])
		}
	}
	if rep.Unresolved() != 5 {
		t.Fatalf("unresolved %d", rep.Unresolved())
	}
	small := &status.DriftReport{Resources: rep.Resources[:3]}
	if capped(small) != small {
		t.Fatal("a small report was copied")
	}
}

// slowHealer drifts on two routes; healing the first takes until the
// check's time is up.
type slowHealer struct{ healed []string }

func (*slowHealer) Prepare(context.Context, *config.Snapshot) (role.Change, error) {
	return commitFunc(func() {}), nil
}
func (*slowHealer) Ready() error                { return nil }
func (*slowHealer) Close(context.Context) error { return nil }
func (*slowHealer) Drift(context.Context) ([]status.DriftResource, error) {
	return []status.DriftResource{{Kind: string(config.DriftRoute), ID: "a"}, {Kind: string(config.DriftRoute), ID: "b"}}, nil
}
func (h *slowHealer) Heal(ctx context.Context, r status.DriftResource) error {
	<-ctx.Done()
	h.healed = append(h.healed, r.ID)
	return ctx.Err()
}

// A heal that outlasts the drift check's time leaves the rest to the
// next check instead of holding the node's loop for each of them.
func TestHealsStopWhenTheCheckRunsOutOfTime(t *testing.T) {
	defer func(d time.Duration) { driftTimeout = d }(driftTimeout)
	driftTimeout = 100 * time.Millisecond
	a := New(Options{Node: "n1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h := &slowHealer{}
	a.applied = snapshotFor(1, "n1")
	a.applied.Site.Drift = config.DriftPolicy{Heal: []config.DriftKind{config.DriftRoute}, MaxHeals: 10, Window: config.Duration(time.Hour)}
	a.roles = map[config.Role]*instance{roleRecorder: {kind: roleRecorder, role: h}}
	a.publish()
	rep := a.checkDrift(context.Background())
	if len(h.healed) != 1 || len(rep.Resources) != 2 {
		t.Fatalf("heals tried %v, report %+v; want one heal tried and both reported", h.healed, rep.Resources)
	}
	for _, r := range rep.Resources {
		if r.State != status.DriftHealError {
			t.Errorf("%s: state %s, want %s", r.ID, r.State, status.DriftHealError)
		}
	}
	if msg := rep.Resources[1].Message; !strings.Contains(msg, "ran out") {
		t.Errorf("the resource left unhealed says %q", msg)
	}
}
