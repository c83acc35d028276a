package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
)

func init() {
	register(command{name: "validate", summary: "check a config directory without touching anything", run: runValidate})
	register(command{name: "plan", summary: "show what applying a config directory would change", run: runPlan})
	register(command{name: "apply", summary: "apply a config directory as a new revision (idempotent)", run: runApply})
	register(command{name: "status", summary: "every node: liveness, applied revision, hash, drift", run: runStatus})
	register(command{name: "history", summary: "list revisions with time and hash", run: runHistory})
	register(command{name: "rollback", summary: "re-apply an earlier revision (default: the previous one)", run: runRollback})
	register(command{name: "promote", summary: "make ORIGIN the active member of an origin group (blue/green)", run: runPromote})
	register(command{name: "invalidate", summary: "remove paths from every edge's cache", run: runInvalidate})
	register(command{name: "invalidations", summary: "list invalidations or show one", run: runInvalidations})
}

// apiFlags are the flags of every command that talks to the controller.
type apiFlags struct {
	fs         *flag.FlagSet
	dir        *string
	ctlURL     *string
	tokenFile  *string
	jsonOut    *bool
	params     paramFlags
	needBundle bool
	args       []string // positional arguments, flags removed
}

// parse accepts flags before, between and after positional arguments, so
// that "promote shop web green --weight 10" works as documented.
func (a *apiFlags) parse(args []string) (err error) {
	a.args, err = parseInterspersed(a.fs, args)
	return err
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments and returns the positional ones ("--" ends the flags).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseVerb parses flags around a command's verb ("bgp routes -j",
// "bgp -j routes") and returns the verb, or "" when there is none.
func parseVerb(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) == 0 {
		return "", err
	}
	return pos[0], nil
}

// nodeFlags adds the flags of every node-level command (bgp, vpn, dns).
func nodeFlags(fs *flag.FlagSet) (node *string, jsonOut *bool) {
	node = fs.String("node", "", "node admin URL (default $INTERCLOUD_NODE, else http://127.0.0.1:9180)")
	jsonOut = fs.Bool("j", false, "print JSON")
	return node, jsonOut
}

func newAPIFlags(name string, needDir bool) *apiFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	a := &apiFlags{fs: fs, params: paramFlags{}, needBundle: needDir}
	a.dir = fs.String("f", "", "config directory (finds the controller and its token too)")
	a.ctlURL = fs.String("controller", "", "controller URL (default $INTERCLOUD_CONTROLLER, else the site's controller.admin, else http://"+config.DefaultControllerAdmin+")")
	a.tokenFile = fs.String("token-file", "", "API token file (default $INTERCLOUD_TOKEN, else the site's token file)")
	a.jsonOut = fs.Bool("j", false, "print JSON")
	if needDir {
		fs.Var(a.params, "param", "set a parameter: name=value or dist.name=value (repeatable)")
	}
	return a
}

// resolve finds the controller and the token, and renders -f DIR when given.
func (a *apiFlags) resolve() (*controller.Client, *config.Snapshot, error) {
	var snap *config.Snapshot
	if *a.dir != "" {
		var err error
		if _, snap, err = loadDir(*a.dir, a.params); err != nil {
			return nil, nil, err
		}
	} else if a.needBundle {
		return nil, nil, errors.New("-f DIR is required")
	}
	base := *a.ctlURL
	if base == "" {
		base = os.Getenv("INTERCLOUD_CONTROLLER")
	}
	if base == "" && snap != nil && snap.Site.Controller.Admin != "" {
		base = snap.Site.Controller.Admin
	}
	if base == "" {
		base = "http://" + config.DefaultControllerAdmin
	}
	token := ""
	switch {
	case *a.tokenFile != "":
		t, err := controller.ReadToken(*a.tokenFile)
		if err != nil {
			return nil, nil, fmt.Errorf("token: %w", err)
		}
		token = t
	case os.Getenv("INTERCLOUD_TOKEN") != "":
		token = os.Getenv("INTERCLOUD_TOKEN")
	case snap != nil:
		token, _ = controller.ReadToken(controller.TokenPath(&snap.Site))
	default:
		// The quickstart's token, so that commands work beside 'make run'.
		token, _ = controller.ReadToken(".intercloud/token")
	}
	return controller.NewClient(base, token), snap, nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runValidate(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	dir := fs.String("f", "", "config directory")
	params := paramFlags{}
	fs.Var(params, "param", "set a parameter: name=value or dist.name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-f DIR is required")
	}
	b, snap, err := loadDir(*dir, params)
	if err != nil {
		return err
	}
	stacks := ""
	if len(snap.Stacks) > 0 {
		stacks = fmt.Sprintf(", %d stacks", len(snap.Stacks))
	}
	fmt.Printf("%s: valid — site %s, %d nodes, %d distributions%s (%d files), hash %s\n",
		*dir, snap.Site.Name, len(snap.Site.Nodes), len(snap.Distributions), stacks, len(b.Files), config.Hash(snap)[:12])
	return nil
}

func runPlan(ctx context.Context, args []string) error {
	a := newAPIFlags("plan", true)
	format := a.fs.String("o", "text", "output: text, or json (as -j)")
	if err := a.parse(args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("-o %q: want text or json", *format)
	}
	cli, snap, err := a.resolve()
	if err != nil {
		return err
	}
	res, err := cli.Plan(ctx, snap)
	if err != nil {
		return err
	}
	if *a.jsonOut || *format == "json" {
		return printJSON(res)
	}
	printPlan(os.Stdout, res)
	return nil
}

func runApply(ctx context.Context, args []string) error {
	a := newAPIFlags("apply", true)
	reason := a.fs.String("reason", "apply", "why, recorded in history")
	wait := a.fs.Bool("wait", false, "follow the revision's rollout stage by stage until it reaches every node (fails if it is rolled back)")
	if err := a.parse(args); err != nil {
		return err
	}
	cli, snap, err := a.resolve()
	if err != nil {
		return err
	}
	res, err := cli.Apply(ctx, snap, *reason)
	if err := a.printResult(res, err); err != nil || !*wait || !res.Changed {
		return err
	}
	return waitRollout(ctx, cli, res.Revision)
}

// printResult prints what an apply, rollback or promote did.
func (a *apiFlags) printResult(res *controller.ApplyResult, err error) error {
	if err != nil {
		return err
	}
	if *a.jsonOut {
		return printJSON(res)
	}
	printResult(res)
	return nil
}

func printResult(res *controller.ApplyResult) {
	if !res.Changed {
		fmt.Printf("No changes: revision %d already has hash %s; nothing applied.\n", res.Revision, res.Hash[:12])
	} else {
		config.FormatDiff(os.Stdout, res.Changes)
		fmt.Printf("Applied revision %d (hash %s).\n", res.Revision, res.Hash[:12])
	}
	printOutputs(res.Outputs)
}

func printOutputs(outputs map[string]map[string]string) {
	if len(outputs) == 0 {
		return
	}
	fmt.Println("Outputs:")
	for _, dist := range sortedKeys(outputs) {
		for _, k := range sortedKeys(outputs[dist]) {
			fmt.Printf("  %s.%s = %s\n", dist, k, outputs[dist][k])
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func runStatus(ctx context.Context, args []string) error {
	a := newAPIFlags("status", false)
	wait := a.fs.Bool("wait", false, "block until every live node runs the current revision")
	timeout := a.fs.Duration("timeout", 2*time.Minute, "with --wait: give up after this long (exit 3)")
	limit := a.fs.Int("limit", 0, fmt.Sprintf("print one page of at most this many nodes (at most %d; default: every page)", controller.MaxStatusLimit))
	after := a.fs.String("after", "", "with --limit: start after the node of this name (the page's next)")
	if err := a.parse(args); err != nil {
		return err
	}
	switch {
	case *limit < 0 || *limit > controller.MaxStatusLimit:
		return fmt.Errorf("--limit %d: want 1 to %d nodes per page", *limit, controller.MaxStatusLimit)
	case *limit > 0 && *wait:
		return errors.New("--limit and --wait do not go together: --wait judges every page")
	case *after != "" && *limit == 0:
		return errors.New("--after goes with --limit")
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	if *limit > 0 {
		st, err := cli.StatusPage(ctx, *after, *limit)
		if err != nil {
			return err
		}
		if *a.jsonOut {
			return printJSON(st)
		}
		printStatus(st, false)
		if st.Next != "" {
			fmt.Printf("%d node(s) in all; next page: intercloud status --limit %d --after %s\n", st.Total, *limit, st.Next)
		}
		return nil
	}
	deadline := time.Now().Add(*timeout)
	for {
		st, err := cli.Status(ctx)
		if err != nil {
			return err
		}
		if !*wait || st.Converged {
			if *a.jsonOut {
				return printJSON(st)
			}
			printStatus(st, true)
			return nil
		}
		if time.Now().After(deadline) {
			printStatus(st, true)
			return &exitError{code: 3, err: fmt.Errorf("not every live node runs revision %d after %s", st.Revision, *timeout)}
		}
		behind := 0
		for _, n := range st.Nodes {
			if n.Live && n.State != "current" {
				behind++
			}
		}
		fmt.Fprintf(os.Stderr, "waiting: %d node(s) not on revision %d yet\n", behind, st.Revision)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// printStatus prints a status; whole says it holds every page, so that its
// verdict is the site's.
func printStatus(st *controller.Status, whole bool) {
	if st.Revision == 0 {
		fmt.Println("Nothing applied yet.")
		return
	}
	fmt.Printf("Revision %d  hash %s  %s  %s\n", st.Revision, st.Hash[:12], st.Time.Local().Format(time.DateTime), st.Reason)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCLOUD\tROLES\tLIVE\tHEALTHY\tREVISION\tHASH\tSTATE\tDETAIL\tMESSAGE")
	for _, n := range st.Nodes {
		live, healthy, rev, hash := "down", "-", "-", "-"
		if n.Live {
			live, healthy, rev, hash = "up", strconv.FormatBool(n.Healthy), strconv.FormatInt(n.Revision, 10), n.Hash[:min(12, len(n.Hash))]
		}
		msg := n.Message
		if n.Drifted > 0 {
			msg = strings.TrimSpace(fmt.Sprintf("drifted: %d resource(s) changed behind its back (intercloud drift %s) %s", n.Drifted, n.Name, msg))
		}
		if len(n.Unavailable) > 0 {
			msg = strings.TrimSpace(fmt.Sprintf("not available in this build: %s %s", sortedRoles(n.Unavailable), msg))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Cloud, sortedRoles(n.Roles), live, healthy, rev, hash, n.State, reportDetail(n), msg)
	}
	tw.Flush()
	if st.Rollout != nil && st.Rollout.Revision == st.Revision {
		fmt.Println(describeRollout(st.Rollout))
	}
	switch {
	case st.Converged && whole:
		fmt.Println("Every live node runs the current revision.")
	case st.Converged:
		fmt.Println("Every live node of this page runs the current revision.")
	}
}

func runHistory(ctx context.Context, args []string) error {
	a := newAPIFlags("history", false)
	if err := a.parse(args); err != nil {
		return err
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	h, err := cli.History(ctx)
	if err != nil {
		return err
	}
	if *a.jsonOut {
		return printJSON(h)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tTIME\tHASH\tREASON")
	for _, r := range h {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Revision, r.Time.Local().Format(time.DateTime), r.Hash[:min(12, len(r.Hash))], r.Reason)
	}
	return tw.Flush()
}

func runRollback(ctx context.Context, args []string) error {
	a := newAPIFlags("rollback", false)
	staged := a.fs.Bool("staged", false, "go through the site's rollout stages instead of reaching every node at once")
	if err := a.parse(args); err != nil {
		return err
	}
	var rev int64
	if len(a.args) > 0 {
		n, err := strconv.ParseInt(a.args[0], 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("REV must be a revision number, got %q", a.args[0])
		}
		rev = n
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	res, err := cli.Rollback(ctx, rev, *staged)
	return a.printResult(res, err)
}

func runPromote(ctx context.Context, args []string) error {
	a := newAPIFlags("promote", false)
	weight := a.fs.Int("weight", 100, "percentage of clients to send to ORIGIN (canary below 100)")
	keep := a.fs.Bool("keep-cache", false, "edges keep serving the old member's cached copies until they are stale (default: ORIGIN's content at once)")
	if err := a.parse(args); err != nil {
		return err
	}
	if len(a.args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: intercloud promote DIST GROUP ORIGIN [--weight PCT] [--keep-cache]")
		return errUsage
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	res, err := cli.Promote(ctx, controller.PromoteRequest{Distribution: a.args[0], Group: a.args[1], Origin: a.args[2], Weight: *weight, KeepCache: *keep})
	return a.printResult(res, err)
}

func runInvalidate(ctx context.Context, args []string) error {
	a := newAPIFlags("invalidate", false)
	noWait := a.fs.Bool("no-wait", false, "print the id and return at once")
	timeout := a.fs.Duration("timeout", 5*time.Minute, "give up waiting after this long (exit 3)")
	if err := a.parse(args); err != nil {
		return err
	}
	if len(a.args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: intercloud invalidate DIST PATH... [--no-wait]")
		return errUsage
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	id, err := cli.Invalidate(ctx, a.args[0], a.args[1:])
	if err != nil {
		return err
	}
	if *noWait {
		fmt.Println(id)
		return nil
	}
	fmt.Fprintf(os.Stderr, "invalidation %s created\n", id)
	deadline := time.Now().Add(*timeout)
	last := ""
	for {
		st, err := cli.Invalidation(ctx, id)
		if err != nil {
			return err
		}
		progress := fmt.Sprintf("%d/%d edges", len(st.Done), len(st.Edges))
		if progress != last {
			fmt.Fprintf(os.Stderr, "%s: %s\n", id, progress)
			last = progress
		}
		if st.Status == "Completed" {
			fmt.Println(id, "Completed")
			return nil
		}
		if time.Now().After(deadline) {
			return &exitError{code: 3, err: fmt.Errorf("invalidation %s still InProgress after %s (%s)", id, *timeout, progress)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func runInvalidations(ctx context.Context, args []string) error {
	a := newAPIFlags("invalidations", false)
	if err := a.parse(args); err != nil {
		return err
	}
	cli, _, err := a.resolve()
	if err != nil {
		return err
	}
	var list []controller.InvalidationStatus
	if len(a.args) > 0 {
		st, err := cli.Invalidation(ctx, a.args[0])
		if err != nil {
			return err
		}
		list = append(list, *st)
	} else if list, err = cli.Invalidations(ctx); err != nil {
		return err
	}
	if *a.jsonOut {
		return printJSON(list)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDISTRIBUTION\tSTATUS\tEDGES\tTIME\tPATHS")
	for _, inv := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", inv.ID, inv.Distribution, inv.Status, len(inv.Done), len(inv.Edges),
			inv.Time.Local().Format(time.DateTime), strings.Join(inv.Paths, " "))
	}
	return tw.Flush()
}

// reportDetail summarises what a node's roles report: BGP sessions,
// tunnels and kernel routes for a gateway, hit ratio for an edge.
func reportDetail(n controller.NodeState) string {
	if !n.Live {
		return "-"
	}
	r := n.Report
	var parts []string
	if len(r.Sessions) > 0 {
		up := 0
		for _, s := range r.Sessions {
			if s.State == "established" {
				up++
			}
		}
		parts = append(parts, fmt.Sprintf("bgp %d/%d established", up, len(r.Sessions)))
	}
	if len(r.Tunnels) > 0 {
		up := 0
		for _, t := range r.Tunnels {
			if t.Up {
				up++
			}
		}
		parts = append(parts, fmt.Sprintf("tunnels %d/%d up", up, len(r.Tunnels)))
	}
	if r.Routes > 0 {
		parts = append(parts, fmt.Sprintf("%d routes", r.Routes))
	}
	if r.Requests > 0 {
		parts = append(parts, fmt.Sprintf("hit %.1f%% of %d", r.HitRatio*100, r.Requests))
	}
	if r.Degraded != "" {
		parts = append(parts, "degraded: "+r.Degraded)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
