package activate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachix-select/cachix-select/pushlib/queue"
)

// DefaultGrace is how long FlushQueue waits, once its context has ended,
// for a push to wind down before it returns anyway: a read from a dead
// mount or a hung FIFO never returns, and `systemctl stop` must not wait
// for its kill timeout.
const DefaultGrace = 2 * time.Second

// FlushOptions say how FlushQueue runs.
type FlushOptions struct {
	Options
	// Wait for a running flush to release the lock (until the context
	// ends) instead of leaving the work to it.
	Wait bool
	// Grace is how long to wait for a push to wind down once the context
	// has ended (0: DefaultGrace).
	Grace time.Duration
}

// FlushReport is what FlushQueue did, for the caller to say.
type FlushReport struct {
	// Busy says another flush holds the lock: it will push the queue, and
	// nothing was done here.
	Busy bool
	// FlushResult totals every pass over the queue.
	FlushResult
	// Blocked says the context ended and a push was still blocked Grace
	// later: FlushQueue returned without it, and the process's exit
	// releases the lock.
	Blocked bool
	// Stopped is why the context ended (its cause), when it did.
	Stopped error
}

// TimeLimit is the cause of a flush's context ending at its limit.
type TimeLimit struct{ D time.Duration }

func (l *TimeLimit) Error() string { return fmt.Sprintf("the time limit of %s was reached", l.D) }

// WithTimeLimit bounds a flush to d (0: no limit); the context's cause then
// says which limit ended it.
func WithTimeLimit(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, &TimeLimit{d})
}

// FlushQueue takes the flush lock of d and flushes until the queue holds
// nothing new, handing over to a flush that started meanwhile. If another
// flush holds the lock it returns at once (Busy: that flush checks the
// queue again before it exits), unless fo.Wait. It returns when ctx ends
// plus fo.Grace at the latest.
func FlushQueue(ctx context.Context, d *queue.Dir, fo FlushOptions) (FlushReport, error) {
	lock, err := takeLock(ctx, d, fo.Wait)
	if errors.Is(err, queue.ErrLocked) {
		return FlushReport{Busy: true}, nil
	}
	if err != nil {
		return FlushReport{}, err
	}
	type result struct {
		r   FlushReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := flushLocked(ctx, d, lock, fo.Options)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		return r.r, r.err
	case <-ctx.Done():
	}
	grace := fo.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case r := <-done:
		return r.r, r.err
	case <-t.C:
	}
	return FlushReport{Blocked: true, Stopped: context.Cause(ctx)}, nil
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

// flushLocked is the flush proper, with the lock held: passes over the
// queue until one finds nothing new, then, once the lock is released, one
// more look for entries an activation queued while it saw us busy (ours
// to push), taking the lock again unless someone else took over.
func flushLocked(ctx context.Context, d *queue.Dir, lock *queue.Lock, opts Options) (FlushReport, error) {
	tried := map[string]bool{}
	var r FlushReport
	for {
		for {
			pass, err := Flush(ctx, d, opts, tried)
			if err != nil {
				lock.Release()
				return r, err
			}
			r.Pushed += pass.Pushed
			r.Dropped += pass.Dropped
			r.Remaining += pass.Remaining
			r.Errors = append(r.Errors, pass.Errors...)
			if pass.Pushed+pass.Dropped+pass.Remaining == 0 {
				break // nothing new since the last pass
			}
		}
		lock.Release()
		if !hasUntried(d, tried) || ctx.Err() != nil {
			break
		}
		var err error
		if lock, err = d.TryLock(false); err != nil {
			break // someone else took over
		}
	}
	if ctx.Err() != nil {
		r.Stopped = context.Cause(ctx)
	}
	return r, nil
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
