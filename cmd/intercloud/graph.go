package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/intercloud/intercloud/topology"
)

func init() {
	register(command{name: "graph", summary: "draw the running topology (clouds, nodes, links, BGP, distributions) as SVG or DOT", run: runGraph})
}

func runGraph(ctx context.Context, args []string) error {
	a := newAPIFlags("graph", false)
	format := a.fs.String("format", "svg", "svg, or dot for Graphviz (-j prints the model as JSON)")
	out := a.fs.String("o", "", "write to this file instead of standard output")
	if err := a.parse(args); err != nil {
		return err
	}
	if *format != "svg" && *format != "dot" {
		return fmt.Errorf("--format %q: want svg or dot", *format)
	}
	if len(a.args) > 0 {
		return fmt.Errorf("graph takes no arguments, got %q", a.args)
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	g, err := cli.Topology(ctx)
	if err != nil {
		return err
	}
	if *a.jsonOut {
		return printJSON(g)
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	draw := topology.SVG
	if *format == "dot" {
		draw = topology.DOT
	}
	if err := draw(w, g); err != nil {
		return fmt.Errorf("graph: write: %w", err)
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		return f.Close()
	}
	return nil
}
