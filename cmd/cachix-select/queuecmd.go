package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cachix-select/cachix-select/pushlib/activate"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/store"
)

// errQueueNotEmpty: some queued pushes failed and remain for later.
var errQueueNotEmpty = errors.New("some queued pushes failed and stay queued")

// queueNotEmpty is errQueueNotEmpty with the count.
type queueNotEmpty struct{ n int }

func (e *queueNotEmpty) Error() string {
	return fmt.Sprintf("%d %s failed", e.n, plural(e.n, "queued push", "queued pushes"))
}

func (e *queueNotEmpty) Unwrap() error { return errQueueNotEmpty }

// systemStateDir is the NixOS module's state directory, which root's
// `queue list` and `queue flush` read besides their own (a variable for
// the tests).
var systemStateDir = queue.SystemDir

// queueDirs are the state directories a queue command works on: the one
// --state-dir names, else the user's default and, for root, the NixOS
// system queue when it exists.
func queueDirs(c *cli.Context) []string {
	if d := c.String("state-dir"); d != "" {
		return []string{d}
	}
	return queue.Dirs(systemStateDir)
}

// defaultFlushLimit bounds a flush, so that a push hung on a dead cache
// releases the flush lock and every later activation, for every cache,
// is not stuck behind it; what is not pushed stays queued for the next.
const defaultFlushLimit = time.Hour

// queueCommand is `cachix-select queue list|flush`.
func queueCommand() *cli.Command {
	flushFlags := append(stateFlags(), credentialFlags()...)
	flushFlags = append(flushFlags,
		&cli.BoolFlag{Name: "wait", Usage: "wait for a running flush to finish (within --timeout) instead of leaving the work to it"},
		&cli.DurationFlag{Name: "timeout", Value: defaultFlushLimit, EnvVars: []string{"CACHIX_SELECT_FLUSH_TIMEOUT"},
			Usage: "stop after `DURATION`, leaving the rest queued; 0: no limit"},
	)
	flushFlags = append(flushFlags, networkFlags()...)
	flushFlags = append(flushFlags, outputFlags()...)
	return &cli.Command{
		Name:  "queue",
		Usage: "inspect and push the pushes queued by activate",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "show queued pushes",
				Description: "Without --state-dir: the queue of $XDG_STATE_HOME/cachix-select (else ~/.local/state/cachix-select),\n" +
					"where home-manager and shell hooks queue, and, run as root, also the NixOS system queue\n" +
					"(" + queue.SystemDir + ").",
				Flags:        append(stateFlags(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				OnUsageError: onUsageError,
				Action:       queueListAction,
			},
			{
				Name:  "flush",
				Usage: "push every queued manifest now (one flush at a time per state directory)",
				Description: "Pushes the queue, entries never tried first, then the least recently tried. An entry is\n" +
					"removed once the cache confirmed it; entries whose paths were garbage-collected are dropped\n" +
					"with a warning; failed entries stay queued. A flush stops after --timeout (default 1h), even\n" +
					"when a push is blocked, and releases the flush lock; the rest stays queued.\n" +
					"Without --state-dir, the same queues as queue list (root: its own and the NixOS system queue,\n" +
					"pushed with the credentials the manifests and root's environment give, not the unit's).\n" +
					"Exit code: 0 when the queue is empty afterwards, 1 when failed entries remain.",
				Flags:        flushFlags,
				OnUsageError: onUsageError,
				Action:       queueFlushAction,
			},
		},
	}
}

// queueFlushAction flushes each queue directory in turn, all within one
// time limit.
func queueFlushAction(c *cli.Context) error {
	ctx, cancel := activate.WithTimeLimit(c.Context, c.Duration("timeout"))
	defer cancel()
	out := newPrinter(c)
	defer out.Close()
	fo := activate.FlushOptions{Options: activateOptions(c, store.New()), Wait: c.Bool("wait")}
	fo.Events = out
	dirs := queueDirs(c)
	var first error
	for _, dir := range dirs {
		if missingDir(dir) {
			// A misspelt --state-dir is not made: there is nothing queued.
			if !c.Bool("quiet") {
				fmt.Fprintf(c.App.ErrWriter, "cachix-select: nothing is queued in %s (the directory does not exist)\n", dir)
			}
			continue
		}
		d, err := queue.Open(dir)
		if err == nil {
			if len(dirs) > 1 && !c.Bool("quiet") {
				fmt.Fprintf(c.App.ErrWriter, "cachix-select: flushing the queue in %s\n", dir)
			}
			r, ferr := activate.FlushQueue(ctx, d, fo)
			err = reportFlush(c, ctx, r, ferr)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// reportFlush says what a flush did, in as few lines as possible: the
// failures of their own (a push stopped by the time limit or a signal is
// said once), and why it stopped. A flush that leaves entries queued fails.
func reportFlush(c *cli.Context, ctx context.Context, r activate.FlushReport, err error) error {
	interrupted := interruption(ctx) != nil
	switch {
	case err != nil:
		return err
	case r.Busy:
		if !c.Bool("quiet") {
			fmt.Fprintln(c.App.ErrWriter, "cachix-select: another flush is running; it will push the queue")
		}
		return nil
	case r.Blocked:
		if !interrupted {
			fmt.Fprintf(c.App.ErrWriter, "cachix-select: stopped: %v and a push was still blocked %s later (a hung cache?); "+
				"what is not pushed stays queued\n", r.Stopped, activate.DefaultGrace)
		}
		return &alreadyReported{errQueueNotEmpty}
	}
	for _, e := range r.Errors {
		if r.Stopped != nil && (errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded)) {
			continue // not a failure of its own: said once below
		}
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: queued push failed: %v\n", e)
	}
	if r.Stopped != nil && !interrupted {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: stopped: %v; %d queued %s stay queued\n",
			r.Stopped, r.Remaining, plural(r.Remaining, "push", "pushes"))
	}
	if r.Remaining > 0 {
		return &alreadyReported{&queueNotEmpty{r.Remaining}}
	}
	if interrupted {
		return ctx.Err()
	}
	return nil
}

// queueRow is one queued entry as queue list shows it.
type queueRow struct {
	ID         string     `json:"id"`
	StateDir   string     `json:"stateDir"`
	Cache      string     `json:"cache"`
	Paths      []string   `json:"paths"`
	Manifest   string     `json:"manifestFile"`
	EnqueuedAt time.Time  `json:"enqueuedAt"`
	Attempts   int        `json:"attempts"`
	LastTry    *time.Time `json:"lastTry,omitempty"`
	LastError  string     `json:"lastError,omitempty"`
}

// queueListAction prints the queues.
func queueListAction(c *cli.Context) error {
	dirs := queueDirs(c)
	all := []queueRow{}
	for i, dir := range dirs {
		if missingDir(dir) {
			// A misspelt --state-dir is not made: there is nothing queued.
			if !c.Bool("json") {
				if i > 0 {
					fmt.Fprintln(c.App.Writer)
				}
				fmt.Fprintf(c.App.Writer, "There is no queue in %s (the directory does not exist).\n", dir)
			}
			continue
		}
		d, err := queue.Open(dir)
		if err != nil {
			return err
		}
		rows, err := queueRows(c, d)
		if err != nil {
			return err
		}
		all = append(all, rows...)
		if c.Bool("json") {
			continue
		}
		if i > 0 {
			fmt.Fprintln(c.App.Writer)
		}
		if err := printQueue(c, d, rows); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		b, _ := json.MarshalIndent(all, "", "  ")
		fmt.Fprintln(c.App.Writer, string(b))
	}
	return nil
}

// queueRows reads one queue, warning about damaged entries.
func queueRows(c *cli.Context, d *queue.Dir) ([]queueRow, error) {
	entries, bad, err := activate.List(d, resolveOptions(c))
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: warning: %v\n", b)
	}
	rows := []queueRow{}
	for _, e := range entries {
		rows = append(rows, queueRow{ID: e.ID, StateDir: d.Path, Cache: e.Cache, Paths: e.Paths, Manifest: e.ManifestFile,
			EnqueuedAt: e.EnqueuedAt, Attempts: e.Attempts, LastTry: e.LastTry, LastError: e.LastError})
	}
	return rows, nil
}

// printQueue prints one queue as a table.
func printQueue(c *cli.Context, d *queue.Dir, rows []queueRow) error {
	if len(rows) == 0 {
		fmt.Fprintf(c.App.Writer, "The queue in %s is empty.\n", d.Path)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "Queued in %s:\n", d.Path)
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCACHE\tPATHS\tQUEUED\tATTEMPTS\tLAST ERROR")
	cut := false
	for _, r := range rows {
		msg := oneLine(r.LastError, 60)
		cut = cut || msg != r.LastError
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", r.ID, r.Cache, len(r.Paths), r.EnqueuedAt.Local().Format("2006-01-02 15:04"), r.Attempts, msg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cut {
		fmt.Fprintln(c.App.Writer, "(errors shortened: queue list --json shows them whole)")
	}
	return nil
}

// oneLine shortens s for a table cell.
func oneLine(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// missingDir reports a state directory that does not exist (and so holds
// no queue); an error other than its absence is left to queue.Open.
func missingDir(dir string) bool {
	_, err := os.Stat(dir)
	return errors.Is(err, fs.ErrNotExist)
}
