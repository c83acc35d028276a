package controller

import (
	"context"
	"net/http"

	"github.com/intercloud/intercloud/topology"
)

// Topology returns the site as it runs (GET /v1/topology).
func (c *Client) Topology(ctx context.Context) (*topology.Graph, error) {
	var out topology.Graph
	return &out, c.do(ctx, http.MethodGet, "/v1/topology", nil, &out)
}
