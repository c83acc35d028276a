package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/store"
	"github.com/intercloud/intercloud/topology"
)

// The console is one page with everything inline — styles, the script,
// the SVG drawings — so that it works on a host with no way out. The
// script's hash is its whole permission to run (Content-Security-Policy).
var (
	//go:embed ui.html
	uiHTML string
	//go:embed ui.js
	uiJS string

	uiTemplate = template.Must(template.New("ui").Funcs(template.FuncMap{
		"short": short,
		"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
	}).Parse(uiHTML))
	uiCSP = func() string {
		sum := sha256.Sum256([]byte(uiJS))
		return "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
			"'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	}()
)

// uiPage is what the console shows; the fragments are the parts the
// script refreshes.
type uiPage struct {
	Site     string
	Status   *Status
	Topology template.HTML
	Charts   template.HTML
	History  []store.RevisionInfo
	Targets  []promoteTarget
	Dists    []string
	Script   template.JS
	Rendered time.Time
}

// promoteTarget is one member of an origin group the console can promote.
type promoteTarget struct {
	Distribution, Group, Origin string
	Active, Canary              bool
	Weight                      int
}

// uiParts names the fragments /ui/fragments serves.
var uiParts = []string{"header", "topology", "charts", "history", "controls"}

// uiPage gathers what the parts asked for (every part when none is named).
// Status and the current revision are read once for all of them: the
// header, the controls and the picture show the same moment.
func (c *Controller) uiPage(ctx context.Context, parts ...string) (*uiPage, error) {
	p := &uiPage{Rendered: time.Now().UTC(), Script: template.JS(uiJS)}
	want := func(part string) bool { return len(parts) == 0 || slices.Contains(parts, part) }
	var cur *config.Snapshot
	if want("header") || want("controls") || want("topology") {
		st, err := c.Status(ctx)
		if err != nil {
			return nil, err
		}
		p.Status = st
		if cur, err = c.cachedCurrent(ctx); err != nil {
			return nil, err
		}
	}
	if want("header") || want("controls") {
		if cur != nil {
			p.Site = cur.Site.Name
			for _, d := range cur.Distributions {
				p.Dists = append(p.Dists, d.Name)
				for _, gname := range slices.Sorted(maps.Keys(d.Spec.OriginGroups)) {
					g := d.Spec.OriginGroups[gname]
					for _, m := range g.Members {
						t := promoteTarget{Distribution: d.Name, Group: gname, Origin: m, Active: g.Active == m}
						if g.Canary != nil && g.Canary.Member == m {
							t.Canary, t.Weight = true, g.Canary.Weight
						}
						p.Targets = append(p.Targets, t)
					}
				}
			}
			slices.Sort(p.Dists)
		}
	}
	if want("topology") {
		g, err := c.topologyOf(ctx, cur, p.Status)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := topology.SVG(&b, g); err != nil {
			return nil, err
		}
		p.Topology = template.HTML(b.String())
	}
	if want("charts") {
		var b bytes.Buffer
		if ch, ok := c.Series(ctx); ok {
			to := ch.To
			if to.IsZero() {
				to = p.Rendered
			}
			for _, chart := range ch.Charts {
				writeChart(&b, chart, ch.Interval, to)
			}
			if len(ch.Failed) > 0 {
				b.WriteString(`<p class="muted" id="scrape-failures">Not read in the last round:`)
				for _, node := range slices.Sorted(maps.Keys(ch.Failed)) {
					what := node
					if what == "" {
						what = "the store"
					}
					fmt.Fprintf(&b, ` <b>%s</b> (%s)`, template.HTMLEscapeString(what), template.HTMLEscapeString(ch.Failed[node]))
				}
				b.WriteString(`</p>`)
			}
		} else {
			b.WriteString(`<p class="muted" id="no-metrics">This controller does not collect metrics.</p>`)
		}
		p.Charts = template.HTML(b.String())
	}
	if want("history") {
		h, err := c.store.History(ctx)
		if err != nil {
			return nil, err
		}
		slices.Reverse(h)
		p.History = h
	}
	return p, nil
}

func (c *Controller) getUI(w http.ResponseWriter, r *http.Request) {
	p, err := c.uiPage(r.Context())
	if err != nil {
		http.Error(w, "store unavailable: "+c.store.NoQuorum(err).Error(), http.StatusServiceUnavailable)
		return
	}
	c.render(w, "page", p)
}

// getUIFragments renders the parts named by ?part= (one or more) from one
// gathering, as a JSON object of part name to HTML: one request and one
// status read per refresh of the page.
func (c *Controller) getUIFragments(w http.ResponseWriter, r *http.Request) {
	parts := r.URL.Query()["part"]
	if len(parts) == 0 {
		http.Error(w, "name the parts of the console: ?part=header&part=...", http.StatusBadRequest)
		return
	}
	for _, part := range parts {
		if !slices.Contains(uiParts, part) {
			http.Error(w, fmt.Sprintf("no part %q of the console", part), http.StatusNotFound)
			return
		}
	}
	p, err := c.uiPage(r.Context(), parts...)
	if err != nil {
		http.Error(w, "store unavailable: "+c.store.NoQuorum(err).Error(), http.StatusServiceUnavailable)
		return
	}
	out := make(map[string]string, len(parts))
	for _, part := range parts {
		var b bytes.Buffer
		if !c.execute(w, &b, part, p) {
			return
		}
		out[part] = b.String()
	}
	uiHeaders(w, "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (c *Controller) render(w http.ResponseWriter, name string, p *uiPage) {
	var b bytes.Buffer
	if !c.execute(w, &b, name, p) {
		return
	}
	uiHeaders(w, "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// execute renders template name into b, or answers the error and says so.
func (c *Controller) execute(w http.ResponseWriter, b *bytes.Buffer, name string, p *uiPage) bool {
	if err := uiTemplate.ExecuteTemplate(b, name, p); err != nil {
		c.log.Warn("ui render", "part", name, "err", err)
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return false
	}
	return true
}

func uiHeaders(w http.ResponseWriter, ctype string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Security-Policy", uiCSP)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}
