package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
)

// printTour tells a newcomer what to curl and dig once everything runs.
func printTour(ctx context.Context, w io.Writer, dir string, ctl *controller.Controller) {
	st, err := ctl.Status(ctx)
	if err != nil {
		return
	}
	snap, _, err := ctl.Current(ctx)
	if err != nil || snap == nil {
		return
	}
	site := &snap.Site
	fmt.Fprintf(w, "\n=== intercloud is up: site %s, revision %d, %d nodes ===\n\n", site.Name, st.Revision, len(st.Nodes))
	var unavailable []string
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  node %-16s %-22s %s\n", n.Name, sortedRoles(n.Roles), n.State)
		for _, r := range n.Unavailable {
			unavailable = append(unavailable, fmt.Sprintf("%s (node %s)", r, n.Name))
		}
	}
	if len(unavailable) > 0 {
		fmt.Fprintf(w, "\n  not available in this build: %s\n", strings.Join(unavailable, ", "))
	}
	fmt.Fprintln(w, "\nTry:")
	for _, n := range site.Nodes {
		if !n.HasRole(config.RoleEdge) || n.Listen.HTTP == "" {
			continue
		}
		for _, d := range snap.Distributions {
			fmt.Fprintf(w, "  curl -i -H 'Host: %s' http://%s/\n", d.Domain(site.DNS.Zone), n.Listen.HTTP)
		}
		break
	}
	for _, n := range site.Nodes {
		if !n.HasRole(config.RoleDNS) || n.Listen.DNS == "" {
			continue
		}
		host, port := splitHostPort(n.Listen.DNS)
		for _, d := range snap.Distributions {
			fmt.Fprintf(w, "  dig @%s -p %s %s A +norecurse\n", host, port, d.Domain(site.DNS.Zone))
		}
		fmt.Fprintf(w, "  dig @%s -p %s %s SOA +norecurse\n", host, port, site.DNS.Zone)
		break
	}
	fmt.Fprintf(w, "  bin/intercloud status            # every node, its revision and health\n")
	fmt.Fprintf(w, "  bin/intercloud history           # revisions with time and hash\n")
	fmt.Fprintf(w, "  bin/intercloud plan -f %s   # what applying the files would change\n", dir)
	if len(snap.Distributions) > 0 {
		fmt.Fprintf(w, "  bin/intercloud invalidate %s '/*'\n", snap.Distributions[0].Name)
	}
	fmt.Fprintf(w, "  curl http://%s/metrics           # controller metrics\n", site.Controller.Admin)
	fmt.Fprintln(w, "\nCtrl-C stops everything; the next 'make run' starts from the stored state.")
}

func splitHostPort(addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, "53"
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:]
}
