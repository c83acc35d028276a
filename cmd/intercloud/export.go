package main

import (
	"context"
	"fmt"
	"os"

	"github.com/intercloud/intercloud/config"
)

func init() {
	register(command{name: "export", summary: "write a stored revision back out as config files (plan of them: no changes)", run: runExport})
}

func runExport(ctx context.Context, args []string) error {
	a := newAPIFlags("export", false)
	rev := a.fs.Int64("revision", 0, "the revision to export (default: the current one)")
	if err := a.parse(args); err != nil {
		return err
	}
	if len(a.args) != 1 || *rev < 0 {
		fmt.Fprintln(os.Stderr, "usage: intercloud export [--revision N] DIR")
		return errUsage
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	var snap *config.Snapshot
	if *rev > 0 {
		snap, err = cli.Revision(ctx, *rev)
	} else {
		snap, err = cli.Current(ctx)
	}
	if err != nil {
		return err
	}
	files, err := config.Export(snap, a.args[0])
	if err != nil {
		return err
	}
	if *a.jsonOut {
		return printJSON(map[string]any{"revision": snap.Revision, "hash": snap.Hash, "files": files})
	}
	fmt.Printf("Exported revision %d (hash %.12s) to %s: the site, %d stack(s), %d distribution(s).\n",
		snap.Revision, snap.Hash, a.args[0], len(snap.Stacks), len(snap.Distributions))
	return nil
}
