// Package parts runs the part uploads of one multipart upload (Cachix's
// presigned parts, S3's UploadPart) in the background, a bounded number at
// once, numbering them from 1 in the order they are started. The first
// failure is kept and cancels the others; Wait returns the parts in order.
// The backends keep their own buffers: a part's send function owns the
// buffer it uploads from and gives it back.
package parts

import (
	"context"
	"sort"
	"sync"
)

// Part is one uploaded part: its number and the ETag the service gave it.
type Part struct {
	Number int
	ETag   string
}

// Uploads is the set of one upload's parts in flight and done. Go, Number
// and Wait belong to the one goroutine that writes the upload's bytes.
type Uploads struct {
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // limits the parts in flight
	wg     sync.WaitGroup
	number int

	mu    sync.Mutex
	err   error
	parts []Part
}

// New starts an empty set with at most inFlight parts uploading at once
// (at least one), under a context of its own derived from ctx.
func New(ctx context.Context, inFlight int) *Uploads {
	ctx, cancel := context.WithCancel(ctx)
	return &Uploads{ctx: ctx, cancel: cancel, slots: make(chan struct{}, max(inFlight, 1))}
}

// Context is the uploads' context: cancelled by the first failure, by
// Cancel, or with the parent.
func (u *Uploads) Context() context.Context { return u.ctx }

// Number is how many parts have been started.
func (u *Uploads) Number() int { return u.number }

// Failed is the first failure recorded (by a part or by Fail), or nil.
func (u *Uploads) Failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// Err is the first failure, or the context's error.
func (u *Uploads) Err() error {
	if err := u.Failed(); err != nil {
		return err
	}
	return u.ctx.Err()
}

// Fail records err as the failure unless one is recorded already, and
// stops the parts in flight.
func (u *Uploads) Fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
		u.cancel()
	}
}

// Go waits for a free slot and then uploads the next part in the
// background: send gets the uploads' context and the part's number and
// returns its ETag. When the uploads have stopped, or stop before a slot
// frees up, Go returns Err and send is never called (its buffer is still
// the caller's).
func (u *Uploads) Go(send func(ctx context.Context, number int) (etag string, err error)) error {
	if u.ctx.Err() != nil {
		return u.Err()
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		return u.Err()
	}
	u.number++
	num := u.number
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer func() { <-u.slots }()
		etag, err := send(u.ctx, num)
		if err != nil {
			u.Fail(err)
			return
		}
		u.mu.Lock()
		u.parts = append(u.parts, Part{Number: num, ETag: etag})
		u.mu.Unlock()
	}()
	return nil
}

// Wait waits for every part started and returns them in order, or the
// first failure.
func (u *Uploads) Wait() ([]Part, error) {
	u.wg.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return nil, u.err
	}
	parts := append([]Part(nil), u.parts...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// Cancel stops the parts in flight and waits for them to end.
func (u *Uploads) Cancel() {
	u.cancel()
	u.wg.Wait()
}
