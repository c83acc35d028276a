package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/intercloud/intercloud/edge"
)

func init() {
	register(command{name: "edge", summary: "show an edge's measured paths to origins: edge paths DIST [ORIGIN]", run: runEdge})
}

func runEdge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	node, jsonOut := nodeFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: intercloud edge paths DIST [ORIGIN] [--node URL] [-j]")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || len(pos) > 3 || pos[0] != "paths" {
		fs.Usage()
		return errUsage
	}
	q := url.Values{"distribution": {pos[1]}}
	if len(pos) == 3 {
		q.Set("origin", pos[2])
	}
	var ps []edge.OriginPaths
	if err := getNodeJSON(ctx, nodeURL(*node)+"/v1/edge/paths?"+q.Encode(), &ps); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(ps)
	}
	if len(ps) == 0 {
		return fmt.Errorf("edge paths: this edge measures no path of distribution %s (it has no tiers with parents, no origin reached over several gateway links, or the origin is unknown)", pos[1])
	}
	printPaths(os.Stdout, ps, time.Now())
	return nil
}

// printPaths writes each origin's candidate paths, the chosen one marked.
func printPaths(w io.Writer, ps []edge.OriginPaths, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORIGIN\tMODE\tPATH\tRTT\tTTFB\tLOSS\tTHROUGHPUT\tSAMPLES\tMEASURED\tCHOSEN")
	for _, o := range ps {
		for _, p := range o.Paths {
			rtt, ttfb, tput, seen, chosen := "-", "-", "-", "never", ""
			if p.RTT > 0 {
				rtt = p.RTT.Round(10 * time.Microsecond).String()
			}
			if p.TTFB > 0 {
				ttfb = p.TTFB.Round(100 * time.Microsecond).String()
			}
			if p.Throughput > 0 {
				tput = fmt.Sprintf("%.1f MB/s", p.Throughput/1e6)
			}
			if !p.Updated.IsZero() {
				seen = now.Sub(p.Updated).Round(100*time.Millisecond).String() + " ago"
			}
			if p.Chosen {
				chosen = "yes, since " + o.Chosen.Since.Format(time.RFC3339) + " (" + now.Sub(o.Chosen.Since).Round(time.Second).String() + ")"
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%.1f%%\t%s\t%d\t%s\t%s\n", o.Distribution, o.Origin, o.Mode, p.ID, rtt, ttfb, 100*p.Loss, tput, p.Samples, seen, chosen)
		}
	}
	tw.Flush()
}
