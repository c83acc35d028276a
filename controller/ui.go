package controller

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/intercloud/intercloud/config"
)

//go:embed ui.html
var uiFS embed.FS

var uiTemplate = template.Must(template.New("ui.html").Funcs(template.FuncMap{
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"short": short,
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
}).ParseFS(uiFS, "ui.html"))

// topology is what the /ui page shows.
type topology struct {
	Site     string
	Status   *Status
	Clouds   []cloudView
	Origins  []originView
	Rendered time.Time
}

type cloudView struct {
	Name     string
	ASN      uint32
	CIDRs    []string
	Gateways []nodeView
	Edges    []nodeView
	Others   []nodeView
}

type nodeView struct {
	NodeState
}

type originView struct {
	Distribution, Origin, URL, Groups string
	Checked                           bool
	Healthy                           bool
	Reason                            string
	Since                             time.Time
}

func (c *Controller) topology(ctx context.Context) (*topology, error) {
	cur, _, err := c.store.Current(ctx)
	if err != nil {
		return nil, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	health, err := c.store.Health(ctx)
	if err != nil {
		return nil, err
	}
	t := &topology{Status: st, Rendered: time.Now()}
	if cur == nil {
		return t, nil
	}
	t.Site = cur.Site.Name
	byName := map[string]NodeState{}
	for _, n := range st.Nodes {
		byName[n.Name] = n
	}
	for _, cl := range cur.Site.Clouds {
		cv := cloudView{Name: cl.Name, ASN: cl.ASN}
		for _, p := range cl.CIDRs {
			cv.CIDRs = append(cv.CIDRs, p.String())
		}
		for _, n := range cur.Site.Nodes {
			if n.Cloud != cl.Name {
				continue
			}
			nv := nodeView{NodeState: byName[n.Name]}
			switch {
			case n.HasRole(config.RoleGateway):
				cv.Gateways = append(cv.Gateways, nv)
			case n.HasRole(config.RoleEdge):
				cv.Edges = append(cv.Edges, nv)
			default:
				cv.Others = append(cv.Others, nv)
			}
		}
		t.Clouds = append(t.Clouds, cv)
	}
	for _, d := range cur.Distributions {
		names := slices.Sorted(maps.Keys(d.Spec.Origins))
		for _, name := range names {
			ov := originView{Distribution: d.Name, Origin: name, URL: d.Spec.Origins[name].URL}
			for gname, g := range d.Spec.OriginGroups {
				switch {
				case g.Active == name:
					ov.Groups += gname + " (active) "
				case g.Canary != nil && g.Canary.Member == name:
					ov.Groups += fmt.Sprintf("%s (canary %d%%) ", gname, g.Canary.Weight)
				case contains(g.Members, name):
					ov.Groups += gname + " "
				}
			}
			if h, ok := health[d.Name+"/"+name]; ok {
				ov.Checked, ov.Healthy, ov.Reason, ov.Since = true, h.Healthy, h.Reason, h.Since
			}
			t.Origins = append(t.Origins, ov)
		}
	}
	return t, nil
}

func (c *Controller) getUI(w http.ResponseWriter, r *http.Request) {
	t, err := c.topology(r.Context())
	if err != nil {
		http.Error(w, "store unavailable: "+c.store.NoQuorum(err).Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := uiTemplate.Execute(w, t); err != nil {
		c.log.Warn("ui render", "err", err)
	}
}
