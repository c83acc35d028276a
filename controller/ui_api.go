package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/topology"
)

// uiRoutes mounts the read-only calls the console and `intercloud graph`
// use, the console itself, and the token check the console's actions
// start from.
func (c *Controller) uiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/topology", c.bounded(c.getTopology))
	mux.HandleFunc("GET /v1/revisions/{n}/diff", c.bounded(c.getRevisionDiff))
	mux.HandleFunc("GET /v1/metrics/series", c.getSeries)
	mux.HandleFunc("GET /v1/auth", c.auth(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	mux.HandleFunc("GET /ui/fragments", c.bounded(c.getUIFragments))
}

// Topology is the site as it runs now: registrations and their reports,
// each node's state against the current revision, origin health, and the
// current revision's clouds, links and distributions.
func (c *Controller) Topology(ctx context.Context) (*topology.Graph, error) {
	cur, err := c.cachedCurrent(ctx)
	if err != nil {
		return nil, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	return c.topologyOf(ctx, cur, st)
}

// topologyOf builds the graph from a status already read (the console
// reads it once for its header and its picture).
func (c *Controller) topologyOf(ctx context.Context, cur *config.Snapshot, st *Status) (*topology.Graph, error) {
	regs, err := c.store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	health, err := c.store.Health(ctx)
	if err != nil {
		return nil, err
	}
	states := make(map[string]string, len(st.Nodes))
	for _, n := range st.Nodes {
		states[n.Name] = n.State
	}
	return topology.Build(topology.Input{Snapshot: cur, Nodes: regs, States: states, Health: health, At: time.Now().UTC()}), nil
}

// cachedCurrent is the current revision (nil before the first apply) from
// the snapshot status pages keep: the console asks every few seconds, and
// the revision is read again only when it changed.
func (c *Controller) cachedCurrent(ctx context.Context) (*config.Snapshot, error) {
	ptr, _, err := c.store.Pointer(ctx)
	if err != nil || ptr.Revision == 0 {
		return nil, err
	}
	cur, _, err := c.desired(ctx, ptr)
	return cur, err
}

// getTopology answers the graph as JSON, or drawn with ?format=svg|dot.
func (c *Controller) getTopology(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "svg" && format != "dot" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("topology: format %q: want json, svg or dot", format))
		return
	}
	g, err := c.Topology(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	switch format {
	case "svg":
		w.Header().Set("Content-Type", "image/svg+xml")
		_ = topology.SVG(w, g)
	case "dot":
		w.Header().Set("Content-Type", "text/vnd.graphviz; charset=utf-8")
		_ = topology.DOT(w, g)
	default:
		writeJSON(w, http.StatusOK, g)
	}
}

// RevisionDiff is what revision Revision changed from From (0: from
// nothing — the first revision, or its predecessor was pruned).
type RevisionDiff struct {
	Revision int64           `json:"revision"`
	From     int64           `json:"from"`
	Reason   string          `json:"reason,omitempty"`
	Time     time.Time       `json:"time"`
	Changes  []config.Change `json:"changes"`
	// Pruned says the previous revision is no longer in history: the
	// changes are against nothing.
	Pruned bool `json:"pruned,omitempty"`
}

// RevisionDiff compares revision n with the one before it.
func (c *Controller) RevisionDiff(ctx context.Context, n int64) (*RevisionDiff, error) {
	snap, err := c.store.Revision(ctx, n)
	if err != nil {
		return nil, err
	}
	d := &RevisionDiff{Revision: n, Reason: snap.Reason, Time: snap.Time}
	var prev *config.Snapshot
	if n > 1 {
		// History says whether the predecessor is still kept; a failed
		// read of a kept revision is the store's error, not a pruning.
		hist, err := c.store.History(ctx)
		if err != nil {
			return nil, err
		}
		d.Pruned = true
		for _, h := range hist {
			if h.Revision == n-1 {
				if prev, err = c.store.Revision(ctx, n-1); err != nil {
					return nil, err
				}
				d.From, d.Pruned = n-1, false
			}
		}
	}
	d.Changes = config.Diff(prev, snap)
	if d.Changes == nil {
		d.Changes = []config.Change{}
	}
	return d, nil
}

func (c *Controller) getRevisionDiff(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, errors.New("revision must be a positive number"))
		return
	}
	d, err := c.RevisionDiff(r.Context(), n)
	if err != nil {
		c.failAs(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
