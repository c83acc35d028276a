package controller

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/store"
)

// maxBody bounds API request bodies: a rendered snapshot is small.
const maxBody = 16 << 20

// Routes mounts the API on mux. Mutating calls need the bearer token;
// read-only calls are open.
func (c *Controller) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui", c.bounded(c.getUI))
	mux.HandleFunc("GET /v1/revision", c.bounded(c.getRevision))
	mux.HandleFunc("GET /v1/revisions/{n}", c.bounded(c.getRevisionN))
	mux.HandleFunc("GET /v1/history", c.bounded(c.getHistory))
	mux.HandleFunc("GET /v1/status", c.bounded(c.getStatus))
	mux.HandleFunc("GET /v1/health", c.bounded(c.getHealth))
	c.driftRoutes(mux) // GET /v1/drift, POST /v1/drift/check (drift.go)
	mux.HandleFunc("GET /v1/invalidations", c.bounded(c.getInvalidations))
	mux.HandleFunc("GET /v1/invalidations/{id}", c.bounded(c.getInvalidation))
	mux.HandleFunc("POST /v1/plan", c.bounded(c.postPlan))
	mux.HandleFunc("POST /v1/apply", c.auth(c.bounded(c.postApply)))
	mux.HandleFunc("POST /v1/rollback", c.auth(c.bounded(c.postRollback)))
	mux.HandleFunc("POST /v1/promote", c.auth(c.bounded(c.postPromote)))
	mux.HandleFunc("POST /v1/invalidations", c.auth(c.bounded(c.postInvalidation)))
	mux.HandleFunc("GET /v1/rollout", c.bounded(c.getRollout))
	mux.HandleFunc("POST /v1/rollout/{action}", c.auth(c.bounded(c.postRollout)))
	c.uiRoutes(mux)
}

// StoreTimeout bounds the store work of one API request. etcd answers
// "no leader" within a few seconds once a member knows it has lost its
// quorum (RequireLeader); the deadline covers what it cannot say: a leader
// lost in the middle of a call, or no member reachable at all. It stays
// below the 15 s an operator's command may take to fail.
const StoreTimeout = 10 * time.Second

// bounded runs h with a context that makes etcd refuse calls while it has
// no leader, and gives up after StoreTimeout, so that a store without a
// quorum fails the request with a message instead of hanging it.
func (c *Controller) bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(store.RequireLeader(r.Context()), StoreTimeout)
		defer cancel()
		h(w, r.WithContext(ctx))
	}
}

func (c *Controller) getRollout(w http.ResponseWriter, r *http.Request) {
	ptr, _, err := c.store.Pointer(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ptr.Rollout)
}

func (c *Controller) postRollout(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if action != "pause" && action != "resume" && action != "abort" {
		writeError(w, http.StatusNotFound, fmt.Errorf("unknown rollout action %q (pause, resume, abort)", action))
		return
	}
	ro, err := c.RolloutAction(r.Context(), action)
	if err != nil {
		c.failAs(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, ro)
}

func (c *Controller) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if c.token == "" || !ok || subtle.ConstantTimeCompare([]byte(got), []byte(c.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="intercloud"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token (see --token-file)"))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// APIError is the body of every failed API call.
type APIError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, APIError{Error: err.Error()})
}

// fail maps an error to its status: a store without a quorum 503 (with
// the endpoints it asked), invalid input 400, refused 409, anything else
// (the store) 503.
func (c *Controller) fail(w http.ResponseWriter, err error) {
	err = c.store.NoQuorum(err)
	switch {
	case errors.Is(err, store.ErrNoQuorum):
		writeError(w, http.StatusServiceUnavailable, err)
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrRefused), errors.Is(err, ErrRolloutBusy):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, http.StatusServiceUnavailable, err)
	}
}

// failAs answers status for err, unless the store has no quorum (503).
func (c *Controller) failAs(w http.ResponseWriter, status int, err error) {
	if err = c.store.NoQuorum(err); errors.Is(err, store.ErrNoQuorum) {
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, err)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, errors.New("bad request body: "+err.Error()))
		return false
	}
	return true
}

func (c *Controller) getRevision(w http.ResponseWriter, r *http.Request) {
	cur, _, err := c.store.Current(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	if cur == nil {
		writeError(w, http.StatusNotFound, errNothingApplied)
		return
	}
	writeJSON(w, http.StatusOK, cur)
}

func (c *Controller) getRevisionN(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, errors.New("revision must be a positive number"))
		return
	}
	snap, err := c.store.Revision(r.Context(), n)
	if err != nil {
		c.failAs(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

func (c *Controller) getHistory(w http.ResponseWriter, r *http.Request) {
	h, err := c.store.History(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// Status pages: a page is sorted by node name and holds DefaultStatusLimit
// nodes unless ?limit= asks for another count up to MaxStatusLimit.
const (
	DefaultStatusLimit = 500
	MaxStatusLimit     = 1000
)

// getStatus answers GET /v1/status?limit=N&after=NAME: the nodes after
// NAME, and in "next" the NAME to ask for the following page with.
func (c *Controller) getStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultStatusLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 1:
			writeError(w, http.StatusBadRequest, fmt.Errorf("status: limit %q is not a positive number", v))
			return
		case n > MaxStatusLimit:
			writeError(w, http.StatusBadRequest, fmt.Errorf("status: limit %d is above the maximum page of %d nodes; walk the pages with after=", n, MaxStatusLimit))
			return
		}
		limit = n
	}
	st, err := c.StatusPage(r.Context(), q.Get("after"), limit)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (c *Controller) getHealth(w http.ResponseWriter, r *http.Request) {
	h, err := c.store.Health(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (c *Controller) getInvalidations(w http.ResponseWriter, r *http.Request) {
	list, err := c.Invalidations(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (c *Controller) getInvalidation(w http.ResponseWriter, r *http.Request) {
	list, err := c.Invalidations(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	for _, inv := range list {
		if inv.ID == r.PathValue("id") {
			writeJSON(w, http.StatusOK, inv)
			return
		}
	}
	writeError(w, http.StatusNotFound, errors.New("no invalidation "+r.PathValue("id")))
}

func (c *Controller) postPlan(w http.ResponseWriter, r *http.Request) {
	var snap config.Snapshot
	if !decode(w, r, &snap) {
		return
	}
	res, err := c.Plan(r.Context(), &snap)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (c *Controller) postApply(w http.ResponseWriter, r *http.Request) {
	var snap config.Snapshot
	if !decode(w, r, &snap) {
		return
	}
	reason := r.URL.Query().Get("reason")
	if reason == "" {
		reason = "apply"
	}
	res, err := c.Apply(r.Context(), &snap, reason)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// RollbackRequest names the revision to go back to (0: the previous one).
type RollbackRequest struct {
	Revision int64 `json:"revision"`
	// Staged sends the rollback through the rollout stages, like an apply.
	Staged bool `json:"staged,omitempty"`
}

func (c *Controller) postRollback(w http.ResponseWriter, r *http.Request) {
	var req RollbackRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := c.Rollback(r.Context(), req.Revision, req.Staged)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (c *Controller) postPromote(w http.ResponseWriter, r *http.Request) {
	var req PromoteRequest
	if !decode(w, r, &req) {
		return
	}
	res, err := c.Promote(r.Context(), req)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// InvalidateRequest asks to remove paths of a distribution from every edge.
type InvalidateRequest struct {
	Distribution string   `json:"distribution"`
	Paths        []string `json:"paths"`
}

func (c *Controller) postInvalidation(w http.ResponseWriter, r *http.Request) {
	var req InvalidateRequest
	if !decode(w, r, &req) {
		return
	}
	id, err := c.Invalidate(r.Context(), req.Distribution, req.Paths)
	if err != nil {
		c.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}
