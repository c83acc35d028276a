package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/intercloud/intercloud/dns"
)

func init() {
	register(command{name: "dns", summary: "ask a dns node what it answers a client, and why: dns query NAME --client IP", run: runDNS})
}

func runDNS(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	node, jsonOut := nodeFlags(fs)
	client := fs.String("client", "", "the resolver's address the query comes from")
	ecs := fs.String("ecs", "", "an EDNS Client Subnet prefix to send, e.g. 1.2.3.0/24")
	qtype := fs.String("type", "A", "query type")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: intercloud dns query NAME [--client IP] [--ecs PREFIX] [--type T] [--node URL] [-j]")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "query" {
		fs.Usage()
		return errUsage
	}
	v := url.Values{"name": {pos[1]}, "type": {*qtype}}
	if *client != "" {
		v.Set("client", *client)
	}
	if *ecs != "" {
		v.Set("ecs", *ecs)
	}
	var x dns.Explanation
	if err := getNodeJSON(ctx, nodeURL(*node)+"/v1/dns/query?"+v.Encode(), &x); err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(x)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "question:\t%s %s from %s", x.Name, x.Type, x.Client)
	if x.ECS != "" {
		fmt.Fprintf(w, " (ECS %s, used: %v, scope /%d)", x.ECS, x.ECSUsed, x.Scope)
	}
	fmt.Fprintln(w)
	located := x.Located
	if located == "" {
		located = "unknown (every live edge)"
	}
	fmt.Fprintf(w, "located by:\t%s %s %s\n", located, x.Country, x.Continent)
	fmt.Fprintf(w, "answered from:\t%s\nrcode:\t%s\n", x.Pool, x.Rcode)
	for _, m := range x.Measured {
		fmt.Fprintf(w, "by latency:\t%s\n", m)
	}
	for _, a := range x.Answer {
		fmt.Fprintf(w, "answer:\t%s\n", a)
	}
	for _, a := range x.Authority {
		fmt.Fprintf(w, "authority:\t%s\n", a)
	}
	if len(x.Edges) > 0 {
		fmt.Fprintln(w, "\nEDGE\tCLOUD\tADDRESS\tWEIGHT\tHANDED OUT\tKM")
		for _, e := range x.Edges {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%v\t%.0f\n", e.Name, e.Cloud, e.Address, e.Weight, e.Eligible, e.KM)
		}
	}
	return w.Flush()
}
