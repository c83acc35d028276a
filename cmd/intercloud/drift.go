package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/status"
)

func init() {
	register(command{name: "drift", summary: "what nodes own that was changed behind their back: drift [NODE] [--check]", run: runDrift})
}

// runDrift lists the resources every node (or NODE) found changed at its
// last drift check, and the recent heals, through the controller; --check
// asks for a check now. With --node URL it asks one node directly. It
// exits 2 when a resource is still drifted (healed ones do not count).
func runDrift(ctx context.Context, args []string) error {
	a := newAPIFlags("drift", false)
	check := a.fs.Bool("check", false, "check now instead of showing the last check (through the controller: needs its token)")
	nodeAPI := a.fs.String("node", "", "ask this node's admin URL directly instead of the controller")
	a.fs.Usage = func() {
		fmt.Fprintln(a.fs.Output(), "usage: intercloud drift [NODE] [--check] [--node URL] [-j]")
		a.fs.PrintDefaults()
	}
	if err := a.parse(args); err != nil {
		return err
	}
	if len(a.args) > 1 || (len(a.args) == 1 && *nodeAPI != "") {
		a.fs.Usage()
		return errUsage
	}
	node := ""
	if len(a.args) == 1 {
		node = a.args[0]
	}
	var d *controller.Drift
	if *nodeAPI != "" {
		method, path := http.MethodGet, "/v1/drift"
		if *check {
			method, path = http.MethodPost, "/v1/drift/check"
		}
		var rep status.DriftReport
		if err := nodeJSON(ctx, method, nodeURL(*nodeAPI)+path, &rep); err != nil {
			return err
		}
		d = &controller.Drift{Nodes: []controller.DriftNode{nodeOf(nodeURL(*nodeAPI), rep)}}
	} else {
		cli, _, err := a.resolve()
		if err != nil {
			return err
		}
		if *check {
			d, err = cli.CheckDrift(ctx, node)
		} else {
			d, err = cli.Drift(ctx, node)
		}
		if err != nil {
			return err
		}
	}
	if *a.jsonOut {
		if err := printJSON(d); err != nil {
			return err
		}
	} else {
		printDrift(os.Stdout, d, time.Now())
	}
	for _, n := range d.Nodes {
		if n.Drifted > 0 {
			return &exitError{code: 2, err: errors.New("resources are drifted")}
		}
	}
	return nil
}

func nodeOf(name string, rep status.DriftReport) controller.DriftNode {
	return controller.DriftNode{Name: name, Live: true, Checked: rep.Checked, Resources: rep.Resources, Error: rep.Error,
		Drifted: rep.Unresolved()}
}

func printDrift(w io.Writer, d *controller.Drift, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tID\tEXPECTED\tACTUAL\tSTATE\tSINCE\tMESSAGE")
	var clean []string
	for _, n := range d.Nodes {
		switch {
		case !n.Live:
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tdown\t-\t%s\n", n.Name, n.Error)
			continue
		case n.Checked.IsZero() && n.Error == "":
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tnot checked yet\t-\t\n", n.Name)
			continue
		case n.Error != "":
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tcheck incomplete\t-\t%s\n", n.Name, n.Error)
		}
		if len(n.Resources) == 0 && n.Error == "" {
			clean = append(clean, fmt.Sprintf("%s (checked %s ago)", n.Name, now.Sub(n.Checked).Round(time.Second)))
		}
		for _, r := range n.Resources {
			since := "-"
			if !r.Since.IsZero() {
				since = now.Sub(r.Since).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, r.Kind, r.ID, r.Expected, r.Actual, r.State, since, r.Message)
		}
	}
	tw.Flush()
	for _, c := range clean {
		fmt.Fprintf(w, "no drift: %s\n", c)
	}
	if len(d.Events) == 0 {
		return
	}
	fmt.Fprintln(w, "\nRecent heals:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tNODE\tKIND\tID\tWAS\tSTATE\tMESSAGE")
	for _, e := range d.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Node, e.Kind, e.ID, e.Actual, e.State, e.Message)
	}
	tw.Flush()
}
