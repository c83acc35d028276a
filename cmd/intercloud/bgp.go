package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/intercloud/intercloud/bgp"
)

func init() {
	register(command{name: "bgp", summary: "show a gateway's BGP neighbors or routes: bgp neighbors|routes", run: runBGP})
}

// bgpRoute mirrors a row of the node's GET /v1/bgp/routes.
type bgpRoute struct {
	bgp.Path
	Installed bool `json:"installed"`
}

func runBGP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bgp", flag.ContinueOnError)
	node, jsonOut := nodeFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: intercloud bgp neighbors|routes [--node URL] [-j]")
		fs.PrintDefaults()
	}
	what, err := parseVerb(fs, args)
	if err != nil {
		return err
	}
	base := nodeURL(*node)
	switch what {
	case "neighbors", "neighbor", "n":
		var ns []bgp.NeighborStatus
		if err := getNodeJSON(ctx, base+"/v1/bgp/neighbors", &ns); err != nil {
			return err
		}
		if *jsonOut {
			return printJSON(ns)
		}
		printNeighbors(os.Stdout, ns, time.Now())
		return nil
	case "routes", "route", "r":
		var rs []bgpRoute
		if err := getNodeJSON(ctx, base+"/v1/bgp/routes", &rs); err != nil {
			return err
		}
		if *jsonOut {
			return printJSON(rs)
		}
		printRoutes(os.Stdout, rs, time.Now())
		return nil
	default:
		fs.Usage()
		return errUsage
	}
}

// nodeURL applies the --node default chain and accepts a bare host:port.
func nodeURL(flagValue string) string {
	u := flagValue
	if u == "" {
		u = os.Getenv("INTERCLOUD_NODE")
	}
	if u == "" {
		u = "http://127.0.0.1:9180"
	}
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return strings.TrimRight(u, "/")
}

func getNodeJSON(ctx context.Context, url string, v any) error {
	return nodeJSON(ctx, http.MethodGet, url, v)
}

// nodeJSON calls a node API with method and decodes its JSON answer.
func nodeJSON(ctx context.Context, method, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("node API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return fmt.Errorf("node API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("node API: %s: %s", resp.Status, e.Error)
		}
		if resp.StatusCode == http.StatusNotFound {
			return errors.New("node API: no gateway role on this node (404)")
		}
		return fmt.Errorf("node API: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("node API: decode %s: %w", url, err)
	}
	return nil
}

// printNeighbors prints a table in the spirit of `gobgp neighbor` and
// `birdc show protocols`.
func printNeighbors(w io.Writer, ns []bgp.NeighborStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tASN\tKIND\tSTATE\tUP/DOWN\tRECEIVED\tACCEPTED\tADVERTISED\tINFO")
	for _, n := range ns {
		up := "never"
		if !n.Since.IsZero() {
			up = formatAge(now.Sub(n.Since))
		}
		state := n.State
		if n.Admin != "" && n.Admin != "up" {
			state += " (" + n.Admin + ")"
		}
		info := n.LastError
		if n.MaxPrefix > 0 {
			info = strings.TrimSpace(fmt.Sprintf("max-prefix %d %s", n.MaxPrefix, info))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n",
			n.Name, n.Address, n.ASN, n.Kind, state, up, n.Received, n.Accepted, n.Advertised, info)
	}
	tw.Flush()
}

// printRoutes prints a table in the spirit of `birdc show route`: best
// paths marked with *, kernel-installed ones with K.
func printRoutes(w io.Writer, rs []bgpRoute, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tPREFIX\tNEXT HOP\tFROM\tKIND\tLOCPREF\tAS PATH\tAGE\tKERNEL")
	for _, r := range rs {
		mark := " "
		if r.Best {
			mark = "*"
		}
		from := r.Neighbor
		if r.Local {
			from = "local"
		} else if from == "" {
			from = r.PeerAddr.String()
		}
		nh := "-"
		if r.NextHop.IsValid() && !r.NextHop.IsUnspecified() {
			nh = r.NextHop.String()
		}
		asPath := make([]string, len(r.ASPath))
		for i, a := range r.ASPath {
			asPath[i] = fmt.Sprint(a)
		}
		age := "-"
		if !r.Age.IsZero() {
			age = formatAge(now.Sub(r.Age))
		}
		kernel := ""
		if r.Installed {
			kernel = "K"
		}
		lp := "-"
		if r.LocalPref > 0 {
			lp = fmt.Sprint(r.LocalPref)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			mark, r.Prefix, nh, from, r.Kind, lp, strings.Join(asPath, " "), age, kernel)
	}
	tw.Flush()
}

// formatAge is hh:mm:ss, or NdHHh for long uptimes, like gobgp.
func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	if d >= 24*time.Hour {
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}
