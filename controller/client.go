package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

// Client talks to a controller's HTTP API.
type Client struct {
	Base  string // e.g. http://127.0.0.1:9170
	Token string
	HTTP  *http.Client
	// Timeout bounds each call; 0 means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is how long one call waits for the controller. The
// controller gives up on the store after StoreTimeout and says why, so a
// call that takes longer means the controller itself is not answering.
const DefaultTimeout = 15 * time.Second

// NewClient returns a client for base (a URL or host:port).
func NewClient(base, token string) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{}}
}

// startHint is what an operator does about a controller that is not there.
const startHint = "is 'intercloud controller' running? start it with 'intercloud controller -f DIR' " +
	"(or 'intercloud up -f DIR' on one machine), or point --controller or $INTERCLOUD_CONTROLLER at it"

// unreachable turns a failed call into a message that names the
// controller, what happened and what to do.
func (c *Client) unreachable(ctx context.Context, timeout time.Duration, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return err // the command was interrupted: nothing to explain
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("controller at %s did not answer in %s: %s", c.Base, timeout, startHint)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("controller at %s did not answer (connection refused): %s", c.Base, startHint)
	}
	return fmt.Errorf("controller at %s unreachable (%w): %s", c.Base, err, startHint)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return c.unreachable(parent, timeout, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if ctx.Err() != nil {
			return c.unreachable(parent, timeout, err)
		}
		return fmt.Errorf("controller at %s: read answer: %w", c.Base, err)
	}
	if resp.StatusCode >= 300 {
		var e APIError
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(e.Error, store.ErrNoQuorum.Error()) {
				return fmt.Errorf("controller: %s: start the store members that are down until a majority answers; nodes keep serving meanwhile", e.Error)
			}
			return fmt.Errorf("controller: %s", e.Error)
		}
		return fmt.Errorf("controller %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("controller %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Plan asks what applying snap would change.
func (c *Client) Plan(ctx context.Context, snap *config.Snapshot) (*ApplyResult, error) {
	var res ApplyResult
	return &res, c.do(ctx, http.MethodPost, "/v1/plan", snap, &res)
}

// Apply writes snap as a new revision (or reports it is already current).
func (c *Client) Apply(ctx context.Context, snap *config.Snapshot, reason string) (*ApplyResult, error) {
	var res ApplyResult
	return &res, c.do(ctx, http.MethodPost, "/v1/apply?reason="+url.QueryEscape(reason), snap, &res)
}

// Rollback re-applies revision rev (0: the previous one).
func (c *Client) Rollback(ctx context.Context, rev int64, staged bool) (*ApplyResult, error) {
	var res ApplyResult
	return &res, c.do(ctx, http.MethodPost, "/v1/rollback", RollbackRequest{Revision: rev, Staged: staged}, &res)
}

// Promote switches an origin group.
func (c *Client) Promote(ctx context.Context, req PromoteRequest) (*ApplyResult, error) {
	var res ApplyResult
	return &res, c.do(ctx, http.MethodPost, "/v1/promote", req, &res)
}

// History lists revisions.
func (c *Client) History(ctx context.Context) ([]store.RevisionInfo, error) {
	var out []store.RevisionInfo
	return out, c.do(ctx, http.MethodGet, "/v1/history", nil, &out)
}

// Current returns the current snapshot.
func (c *Client) Current(ctx context.Context) (*config.Snapshot, error) {
	var out config.Snapshot
	return &out, c.do(ctx, http.MethodGet, "/v1/revision", nil, &out)
}

// Revision returns the snapshot of revision n.
func (c *Client) Revision(ctx context.Context, n int64) (*config.Snapshot, error) {
	var out config.Snapshot
	return &out, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/revisions/%d", n), nil, &out)
}

// StatusPage returns up to limit nodes (0: the controller's default page)
// whose names sort after after; the page's Next continues the walk.
func (c *Client) StatusPage(ctx context.Context, after string, limit int) (*Status, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/status"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Status
	return &out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Status walks every page and returns every node's state against the
// desired revision. Converged holds only when every page said so about
// one and the same revision: a walk that sees the revision change starts
// again, and after a few such changes reports the site as not converged.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	const walks = 3
	for i := 1; ; i++ {
		all, mixed, err := c.walkStatus(ctx)
		if err != nil || !mixed || i == walks {
			return all, err
		}
	}
}

// walkStatus reads every page once; mixed says the revision changed
// between pages.
func (c *Client) walkStatus(ctx context.Context) (all *Status, mixed bool, err error) {
	for after := ""; ; {
		page, err := c.StatusPage(ctx, after, 0)
		if err != nil {
			return nil, false, err
		}
		if all == nil {
			all = page
		} else {
			all.Nodes = append(all.Nodes, page.Nodes...)
			all.Converged = all.Converged && page.Converged
			if page.Revision != all.Revision || page.Hash != all.Hash {
				mixed, all.Converged = true, false
			}
		}
		if page.Next == "" {
			all.Next = ""
			return all, mixed, nil
		}
		after = page.Next
	}
}

// Health returns every health-checked target.
func (c *Client) Health(ctx context.Context) (map[string]status.OriginHealth, error) {
	var out map[string]status.OriginHealth
	return out, c.do(ctx, http.MethodGet, "/v1/health", nil, &out)
}

// Invalidate records an invalidation and returns its id.
func (c *Client) Invalidate(ctx context.Context, dist string, paths []string) (string, error) {
	var out map[string]string
	err := c.do(ctx, http.MethodPost, "/v1/invalidations", InvalidateRequest{Distribution: dist, Paths: paths}, &out)
	return out["id"], err
}

// Invalidation returns one invalidation's progress.
func (c *Client) Invalidation(ctx context.Context, id string) (*InvalidationStatus, error) {
	var out InvalidationStatus
	return &out, c.do(ctx, http.MethodGet, "/v1/invalidations/"+url.PathEscape(id), nil, &out)
}

// Invalidations lists all invalidations, newest first.
func (c *Client) Invalidations(ctx context.Context) ([]InvalidationStatus, error) {
	var out []InvalidationStatus
	return out, c.do(ctx, http.MethodGet, "/v1/invalidations", nil, &out)
}

// Rollout returns the current revision's rollout (nil: it went out at once).
func (c *Client) Rollout(ctx context.Context) (*store.Rollout, error) {
	var out *store.Rollout
	return out, c.do(ctx, http.MethodGet, "/v1/rollout", nil, &out)
}

// RolloutAction pauses, resumes or aborts the current rollout.
func (c *Client) RolloutAction(ctx context.Context, action string) (*store.Rollout, error) {
	var out *store.Rollout
	return out, c.do(ctx, http.MethodPost, "/v1/rollout/"+url.PathEscape(action), nil, &out)
}
