package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib"
	"github.com/cachix-select/cachix-select/pushlib/activate"
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// errQueueNotEmpty: some queued pushes failed and remain for later.
var errQueueNotEmpty = errors.New("some queued pushes failed and stay queued")

// queueCommand is `cachix-select queue list|flush`.
func queueCommand() *cli.Command {
	flushFlags := append(stateFlags(), credentialFlags()...)
	flushFlags = append(flushFlags,
		&cli.BoolFlag{Name: "wait", Usage: "wait for a running flush to finish instead of leaving the work to it"},
		&cli.DurationFlag{Name: "timeout", Usage: "stop after `DURATION`, leaving the rest queued (default: no limit)"},
	)
	flushFlags = append(flushFlags, outputFlags()...)
	return &cli.Command{
		Name:  "queue",
		Usage: "inspect and push the pushes queued by activate",
		Subcommands: []*cli.Command{
			{
				Name:         "list",
				Usage:        "show queued pushes",
				Flags:        append(stateFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				OnUsageError: onUsageError,
				Action:       queueListAction,
			},
			{
				Name:  "flush",
				Usage: "push every queued manifest now (one flush at a time per state directory)",
				Description: "Pushes the queue oldest first. An entry is removed once the cache confirmed it; entries whose\n" +
					"paths were garbage-collected are dropped with a warning; failed entries stay queued.\n" +
					"Exit code: 0 when the queue is empty afterwards, 1 when failed entries remain.",
				Flags:        flushFlags,
				OnUsageError: onUsageError,
				Action: func(c *cli.Context) error {
					d, err := queue.Open(stateDir(c))
					if err != nil {
						return err
					}
					ctx := c.Context
					if t := c.Duration("timeout"); t > 0 {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, t)
						defer cancel()
					}
					return flushQueue(ctx, c, d, c.Bool("wait"))
				},
			},
		},
	}
}

// flushQueue takes the lock and flushes until the queue holds nothing new.
// If another flush holds the lock it returns at once (that flush checks the
// queue again before it exits), unless wait is set.
func flushQueue(ctx context.Context, c *cli.Context, d *queue.Dir, wait bool) error {
	lock, err := d.TryLock(wait)
	if errors.Is(err, queue.ErrLocked) {
		if !c.Bool("quiet") {
			fmt.Fprintln(c.App.ErrWriter, "cachix-select: another flush is running; it will push the queue")
		}
		return nil
	}
	if err != nil {
		return err
	}
	out := newRenderer(c, c.App.Writer, c.App.ErrWriter)
	defer out.Close()
	opts := activate.Options{
		Overrides: pushlib.Overrides{AuthTokenFile: c.String("auth-token-file"), SigningKeyFile: c.String("signing-key-file"),
			S3CredentialsFile: c.String("s3-credentials-file")},
		Store:   store.New(),
		Events:  out,
		Backend: backendOptions(c),
	}
	tried := map[string]bool{}
	var total activate.FlushResult
	for {
		for {
			r, err := activate.Flush(ctx, d, opts, tried)
			if err != nil {
				lock.Release()
				return err
			}
			total.Pushed += r.Pushed
			total.Dropped += r.Dropped
			total.Remaining += r.Remaining
			total.Errors = append(total.Errors, r.Errors...)
			if r.Pushed+r.Dropped+r.Remaining == 0 {
				break // nothing new since the last pass
			}
		}
		lock.Release()
		// Entries queued while we held the lock, by an activation that saw
		// us busy, are ours to push: look once more after releasing.
		if !hasUntried(d, tried) || ctx.Err() != nil {
			break
		}
		if lock, err = d.TryLock(false); err != nil {
			break // someone else took over
		}
	}
	for _, e := range total.Errors {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: queued push failed: %v\n", e)
	}
	if total.Remaining > 0 {
		return &alreadyReported{fmt.Errorf("%w (%d)", errQueueNotEmpty, total.Remaining)}
	}
	return ctx.Err()
}

// hasUntried reports queued entries this flush has not attempted yet.
func hasUntried(d *queue.Dir, tried map[string]bool) bool {
	entries, _, err := d.List()
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !tried[e.ID] {
			return true
		}
	}
	return false
}

// queueListAction prints the queue.
func queueListAction(c *cli.Context) error {
	d, err := queue.Open(stateDir(c))
	if err != nil {
		return err
	}
	entries, bad, err := d.List()
	if err != nil {
		return err
	}
	type row struct {
		ID         string     `json:"id"`
		Cache      string     `json:"cache"`
		Paths      []string   `json:"paths"`
		Manifest   string     `json:"manifestFile"`
		EnqueuedAt time.Time  `json:"enqueuedAt"`
		Attempts   int        `json:"attempts"`
		LastTry    *time.Time `json:"lastTry,omitempty"`
		LastError  string     `json:"lastError,omitempty"`
	}
	rows := []row{}
	for _, e := range entries {
		r := row{ID: e.ID, Manifest: e.ManifestFile, EnqueuedAt: e.EnqueuedAt, Attempts: e.Attempts, LastTry: e.LastTry, LastError: e.LastError, Paths: []string{}}
		if m, err := manifest.Parse(e.Manifest, e.ManifestFile); err == nil {
			r.Cache = pushlib.FromManifest(m).String()
			for _, p := range m.Paths {
				r.Paths = append(r.Paths, p.StorePath)
			}
		} else {
			r.Cache = "(unreadable manifest: " + err.Error() + ")"
		}
		rows = append(rows, r)
	}
	if c.Bool("json") {
		b, _ := json.MarshalIndent(rows, "", "  ")
		fmt.Fprintln(c.App.Writer, string(b))
		return nil
	}
	for _, b := range bad {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: warning: %v\n", b)
	}
	if len(rows) == 0 {
		fmt.Fprintf(c.App.Writer, "The queue in %s is empty.\n", d.Path)
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCACHE\tPATHS\tQUEUED\tATTEMPTS\tLAST ERROR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", r.ID, r.Cache, len(r.Paths), r.EnqueuedAt.Local().Format("2006-01-02 15:04"), r.Attempts, oneLine(r.LastError, 60))
	}
	return tw.Flush()
}

// oneLine shortens s for a table cell.
func oneLine(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
