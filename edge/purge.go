package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/intercloud/intercloud/status"
)

// Invalidate drops every stored object (every variant, every query) of
// the distribution whose path equals one of inv.Paths, or starts with one
// ending in "*". Fetches running during the purge do not store.
func (e *Edge) Invalidate(ctx context.Context, inv status.Invalidation) error {
	if inv.Distribution == "" {
		return fmt.Errorf("edge: invalidation %s names no distribution", inv.ID)
	}
	for _, p := range inv.Paths {
		if !strings.HasPrefix(p, "/") && p != "*" {
			return fmt.Errorf("edge: invalidation %s: path %q must start with /", inv.ID, p)
		}
	}
	e.purgeGen.Add(1)
	var keys []string
	e.store.Each(func(ent *entry) {
		if ent.dist == inv.Distribution && pathMatches(inv.Paths, ent.path) {
			keys = append(keys, ent.key)
		}
	})
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("edge: invalidation %s: %w", inv.ID, err)
		}
		e.store.Del(k)
	}
	e.metrics.purged.Add(float64(len(keys)))
	e.log.Info("invalidated", "id", inv.ID, "distribution", inv.Distribution, "paths", inv.Paths, "objects", len(keys))
	return nil
}

func pathMatches(paths []string, p string) bool {
	for _, q := range paths {
		if pre, ok := strings.CutSuffix(q, "*"); ok {
			if strings.HasPrefix(p, pre) {
				return true
			}
		} else if q == p {
			return true
		}
	}
	return false
}

// mountRoutes mounts GET /v1/edge/cache (store stats) and POST
// /v1/edge/purge?distribution=D&path=P... on the node admin mux.
func (e *Edge) mountRoutes(mux *http.ServeMux) {
	e.mountPathRoutes(mux)
	mux.HandleFunc("GET /v1/edge/cache", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		t := e.table.Load()
		var rev int64
		if t != nil {
			rev = t.revision
		}
		json.NewEncoder(w).Encode(struct {
			Revision int64 `json:"revision"`
			StoreStats
		}{rev, e.Stats()})
	})
	mux.HandleFunc("POST /v1/edge/purge", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		inv := status.Invalidation{ID: "local", Distribution: q.Get("distribution"), Paths: q["path"]}
		if err := e.Invalidate(r.Context(), inv); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
