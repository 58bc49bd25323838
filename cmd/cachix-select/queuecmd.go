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
	ctx, cancel := withTimeLimit(c.Context, c.Duration("timeout"))
	defer cancel()
	fo := flushOptions{wait: c.Bool("wait"), failFast: c.Bool("fail-fast")}
	dirs := queueDirs(c)
	var first error
	for _, dir := range dirs {
		d, err := queue.Open(dir)
		if err == nil {
			if len(dirs) > 1 && !c.Bool("quiet") {
				fmt.Fprintf(c.App.ErrWriter, "cachix-select: flushing the queue in %s\n", dir)
			}
			err = flushQueue(ctx, c, d, fo)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// flushOptions say how one flush runs.
type flushOptions struct {
	// wait for a running flush to release the lock (within the time limit).
	wait bool
	// failFast gives up at once on hosts that cannot be reached at all.
	failFast bool
}

// timeLimit is the cause of a flush's context ending at its limit.
type timeLimit struct{ d time.Duration }

func (l *timeLimit) Error() string { return fmt.Sprintf("the time limit of %s was reached", l.d) }

// withTimeLimit bounds a flush to d (0: no limit); the context's cause
// then says which limit ended it.
func withTimeLimit(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, &timeLimit{d})
}

// flushQueue takes the lock and flushes until the queue holds nothing new.
// If another flush holds the lock it returns at once (that flush checks the
// queue again before it exits), unless fo.wait is set. It returns when ctx
// ends (see withTimeLimit) plus a grace period at the latest: when a push
// is blocked past it (a hung file system), flushQueue returns anyway and
// the process exit releases the lock.
func flushQueue(ctx context.Context, c *cli.Context, d *queue.Dir, fo flushOptions) error {
	lock, err := takeLock(ctx, d, fo.wait)
	if errors.Is(err, queue.ErrLocked) {
		if !c.Bool("quiet") {
			fmt.Fprintln(c.App.ErrWriter, "cachix-select: another flush is running; it will push the queue")
		}
		return nil
	}
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- flushLocked(ctx, c, d, lock, fo) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(interruptGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	}
	if interruption(ctx) == nil {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: stopped: %v and a push was still blocked %s later (a hung cache?); "+
			"what is not pushed stays queued\n", context.Cause(ctx), interruptGrace)
	}
	return &alreadyReported{errQueueNotEmpty}
}

// takeLock takes the flush lock; with wait, it polls until ctx ends.
func takeLock(ctx context.Context, d *queue.Dir, wait bool) (*queue.Lock, error) {
	for {
		lock, err := d.TryLock(false)
		if !wait || !errors.Is(err, queue.ErrLocked) {
			return lock, err
		}
		select {
		case <-ctx.Done():
			return nil, queue.ErrLocked
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// flushLocked is the flush proper, with the lock held.
func flushLocked(ctx context.Context, c *cli.Context, d *queue.Dir, lock *queue.Lock, fo flushOptions) error {
	out := newRenderer(c, c.App.Writer, c.App.ErrWriter)
	defer out.Close()
	bopts := backendOptions(c)
	bopts.FailFast = bopts.FailFast || fo.failFast
	opts := activate.Options{
		Overrides: pushlib.Overrides{AuthTokenFile: c.String("auth-token-file"), SigningKeyFile: c.String("signing-key-file")},
		Store:     store.New(),
		Events:    out,
		Backend:   bopts,
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
		var err error
		if lock, err = d.TryLock(false); err != nil {
			break // someone else took over
		}
	}
	stopped := ctx.Err() != nil
	for _, e := range total.Errors {
		if stopped && (errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded)) {
			continue // not a failure of its own: said once below
		}
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: queued push failed: %v\n", e)
	}
	if stopped && interruption(ctx) == nil {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: stopped: %v; %d queued %s stay queued\n",
			context.Cause(ctx), total.Remaining, plural(total.Remaining, "push", "pushes"))
	}
	if total.Remaining > 0 {
		return &alreadyReported{fmt.Errorf("%w (%d)", errQueueNotEmpty, total.Remaining)}
	}
	if interruption(ctx) != nil {
		return ctx.Err()
	}
	return nil
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
	entries, bad, err := d.List()
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		fmt.Fprintf(c.App.ErrWriter, "cachix-select: warning: %v\n", b)
	}
	rows := []queueRow{}
	for _, e := range entries {
		r := queueRow{ID: e.ID, StateDir: d.Path, Manifest: e.ManifestFile, EnqueuedAt: e.EnqueuedAt, Attempts: e.Attempts, LastTry: e.LastTry, LastError: e.LastError, Paths: []string{}}
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
