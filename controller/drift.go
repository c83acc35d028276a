package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// driftRoutes mounts GET /v1/drift (what every node's last drift check
// found, and the heal log) and POST /v1/drift/check (a check now on every
// live node, or one).
func (c *Controller) driftRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/drift", c.bounded(c.getDrift))
	mux.HandleFunc("POST /v1/drift/check", c.auth(c.bounded(c.postDriftCheck)))
}

// DriftNode is one node's last drift check.
type DriftNode struct {
	Name    string    `json:"name"`
	Live    bool      `json:"live"`
	Checked time.Time `json:"checked,omitzero"`
	// Drifted counts the resources not healed; Resources lists them all.
	Drifted   int                    `json:"drifted"`
	Resources []status.DriftResource `json:"resources,omitempty"`
	Error     string                 `json:"error,omitempty"`
}

// Drift is what GET /v1/drift answers: nodes by name, and the most recent
// heals (newest first).
type Drift struct {
	Nodes  []DriftNode         `json:"nodes"`
	Events []status.DriftEvent `json:"events"`
}

// driftEventsShown is how many heal records GET /v1/drift returns.
const driftEventsShown = 50

// Drift reads every node's (or one node's) last drift check from its
// registration, and the heal log.
func (c *Controller) Drift(ctx context.Context, node string) (*Drift, error) {
	live, err := c.store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	d := &Drift{Nodes: []DriftNode{}}
	names, err := c.siteNodes(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if node != "" && name != node {
			continue
		}
		dn := DriftNode{Name: name}
		if st, ok := live[name]; ok {
			dn.Live, dn.Drifted = true, st.Drifted
			if st.Drift != nil {
				dn.Checked, dn.Resources, dn.Error = st.Drift.Checked, st.Drift.Resources, st.Drift.Error
			}
		}
		d.Nodes = append(d.Nodes, dn)
	}
	if node != "" && len(d.Nodes) == 0 {
		return nil, fmt.Errorf("%w: no node %q in the site", ErrInvalid, node)
	}
	if d.Events, err = c.store.DriftEvents(ctx, node, driftEventsShown); err != nil {
		return nil, err
	}
	return d, nil
}

// siteNodes are the current revision's node names, sorted.
func (c *Controller) siteNodes(ctx context.Context) ([]string, error) {
	ptr, _, err := c.store.Pointer(ctx)
	if err != nil || ptr.Revision == 0 {
		return nil, err
	}
	_, nodes, err := c.desired(ctx, ptr)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return names, nil
}

// checkConcurrency bounds the checks asked of nodes at once.
const checkConcurrency = 16

// CheckDrift asks every live node (or one) for a drift check now, on its
// admin address, and returns what they found. A node that cannot be asked
// says why in its Error.
func (c *Controller) CheckDrift(ctx context.Context, node string) (*Drift, error) {
	ptr, _, err := c.store.Pointer(ctx)
	if err != nil {
		return nil, err
	}
	if ptr.Revision == 0 {
		return &Drift{Nodes: []DriftNode{}}, nil
	}
	_, nodes, err := c.desired(ctx, ptr)
	if err != nil {
		return nil, err
	}
	live, err := c.store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var targets []*config.Node
	for _, n := range nodes {
		if node == "" || n.Name == node {
			targets = append(targets, n)
		}
	}
	if node != "" && len(targets) == 0 {
		return nil, fmt.Errorf("%w: no node %q in the site", ErrInvalid, node)
	}
	d := &Drift{Nodes: make([]DriftNode, len(targets))}
	sem := make(chan struct{}, checkConcurrency)
	var wg sync.WaitGroup
	for i, n := range targets {
		dn := &d.Nodes[i]
		dn.Name = n.Name
		if _, ok := live[n.Name]; !ok {
			dn.Error = "down: not checked"
			continue
		}
		dn.Live = true
		if n.Listen.Admin == "" {
			dn.Error = "no admin address in the site: not checked"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep, err := checkNode(ctx, n.AdminURL())
			if err != nil {
				dn.Error = err.Error()
				return
			}
			dn.Checked, dn.Resources, dn.Error = rep.Checked, rep.Resources, rep.Error
			dn.Drifted = rep.Unresolved()
		}()
	}
	wg.Wait()
	if d.Events, err = c.store.DriftEvents(ctx, node, driftEventsShown); err != nil {
		return nil, err
	}
	return d, nil
}

// checkNode is POST /v1/drift/check on one node's admin API (base URL).
func checkNode(ctx context.Context, admin string) (*status.DriftReport, error) {
	u := admin + "/v1/drift/check"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("drift check: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("drift check %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("drift check %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	var rep status.DriftReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("drift check %s: %w", u, err)
	}
	return &rep, nil
}

func (c *Controller) getDrift(w http.ResponseWriter, r *http.Request) {
	d, err := c.Drift(r.Context(), r.URL.Query().Get("node"))
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (c *Controller) postDriftCheck(w http.ResponseWriter, r *http.Request) {
	d, err := c.CheckDrift(r.Context(), r.URL.Query().Get("node"))
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// Drift reads the nodes' last drift checks through the controller
// (node "": every node).
func (c *Client) Drift(ctx context.Context, node string) (*Drift, error) {
	var d Drift
	return &d, c.do(ctx, http.MethodGet, "/v1/drift"+nodeQuery(node), nil, &d)
}

// CheckDrift asks the controller for a drift check on every live node (or
// one) now.
func (c *Client) CheckDrift(ctx context.Context, node string) (*Drift, error) {
	var d Drift
	return &d, c.do(ctx, http.MethodPost, "/v1/drift/check"+nodeQuery(node), nil, &d)
}

func nodeQuery(node string) string {
	if node == "" {
		return ""
	}
	return "?node=" + url.QueryEscape(node)
}
