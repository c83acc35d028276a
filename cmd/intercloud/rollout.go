package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/store"
)

func init() {
	register(command{name: "rollout", summary: "the current revision's staged rollout: status, pause, resume, abort", run: runRollout})
}

func runRollout(ctx context.Context, args []string) error {
	a := newAPIFlags("rollout", false)
	if err := a.parse(args); err != nil {
		return err
	}
	action := "status"
	if len(a.args) > 0 {
		action = a.args[0]
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	var ro *store.Rollout
	switch action {
	case "status":
		ro, err = cli.Rollout(ctx)
	case "pause", "resume", "abort":
		ro, err = cli.RolloutAction(ctx, action)
	default:
		return fmt.Errorf("rollout %s: want status, pause, resume or abort", action)
	}
	if err != nil {
		return err
	}
	if *a.jsonOut {
		return printJSON(ro)
	}
	fmt.Println(describeRollout(ro))
	return nil
}

// describeRollout is one line about a rollout.
func describeRollout(ro *store.Rollout) string {
	if ro == nil {
		return "No rollout: the current revision went out to every node at once."
	}
	switch ro.State {
	case store.RolloutProgressing, store.RolloutPaused:
		return fmt.Sprintf("Revision %d %s: stage %d, %d node(s) on it (%s), the others on revision %d; for %s.",
			ro.Revision, ro.State, ro.Stage+1, len(ro.Nodes), strings.Join(ro.Nodes, ", "), ro.From,
			time.Since(ro.Started).Round(100*time.Millisecond))
	case store.RolloutComplete:
		if ro.Reason != "" {
			return fmt.Sprintf("Revision %d reached every node (%s).", ro.Revision, ro.Reason)
		}
		return fmt.Sprintf("Revision %d reached every node in %s.", ro.Revision, ro.StageStarted.Sub(ro.Started).Round(100*time.Millisecond))
	default:
		return fmt.Sprintf("Revision %d: rollout %s: %s", ro.Revision, ro.State, ro.Reason)
	}
}

// errRolledBack: apply --wait saw its revision rolled back.
var errRolledBack = errors.New("rolled back")

// waitRollout prints a line per stage until revision rev has reached every
// node, or fails when its rollout is rolled back.
func waitRollout(ctx context.Context, cli *controller.Client, rev int64) error {
	last := ""
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		ro, err := cli.Rollout(ctx)
		if err != nil {
			return err
		}
		line := describeRollout(ro)
		if line != last {
			fmt.Println(line)
			last = line
		}
		switch {
		case ro == nil, ro.Revision == rev && ro.State == store.RolloutComplete:
			return nil
		case ro.Revision != rev || ro.State == store.RolloutFailed || ro.State == store.RolloutAborted:
			return fmt.Errorf("revision %d %w: %s", rev, errRolledBack, ro.Reason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
