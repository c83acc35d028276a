package dns

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/intercloud/intercloud/status"
)

// records keeps what a server logs.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// take returns the records about fail open logged since the last call, as
// "LEVEL message distribution".
func (r *records) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if !strings.Contains(rec.Message, "fail") && !strings.Contains(rec.Message, "no edge is live") {
			continue
		}
		line := rec.Level.String() + " " + rec.Message
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "distribution" {
				line += " " + a.Value.String()
			}
			return true
		})
		out = append(out, line)
	}
	r.recs = nil
	return out
}

// A node's normal start (edges not registered yet) is one info line; a
// warning comes only when edges that were live are all gone.
func TestFailOpenLogging(t *testing.T) {
	snap := testSnapshot("")
	rec := &records{}
	s, _ := startServer(t, snap, func(o *Options) { o.Logger = slog.New(rec) })
	none := map[string]status.NodeStatus{}

	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"first revision, liveness not known yet", func() {}, nil},
		{"no edge registered yet", func() { s.SetNodes(none) }, []string{
			"INFO dns: no edge is live yet; answering with every edge until one is (the site is starting)"}},
		{"the store's view of the nodes again", func() { s.SetNodes(map[string]status.NodeStatus{"ns-a": {Name: "ns-a", Healthy: true}}) }, nil},
		{"edges register", func() { s.SetNodes(liveAll(snap)) }, nil},
		{"every edge gone", func() { s.SetNodes(none) }, []string{
			"WARN dns: every live edge of the distribution is gone; answering with every edge (fail open) shop",
			"WARN dns: every live edge of the distribution is gone; answering with every edge (fail open) tokyo-only"}},
		{"still gone", func() { s.SetNodes(map[string]status.NodeStatus{"ns-a": {Name: "ns-a", Healthy: true}}) }, nil},
		{"edges back", func() { s.SetNodes(liveAll(snap)) }, []string{
			"INFO dns: distribution no longer fails open shop",
			"INFO dns: distribution no longer fails open tokyo-only"}},
	}
	for _, st := range steps {
		st.do()
		got := rec.take()
		if strings.Join(sortedCopy(got), "\n") != strings.Join(st.want, "\n") {
			t.Errorf("%s: logged\n%s\nwant\n%s", st.name, strings.Join(got, "\n"), strings.Join(st.want, "\n"))
		}
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
