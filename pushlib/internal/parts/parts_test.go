package parts

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// The parts come back in order whatever order they finish in, and never
// more than inFlight run at once.
func TestOrderAndBound(t *testing.T) {
	u := New(context.Background(), 3)
	var running, peak atomic.Int32
	for i := 0; i < 20; i++ {
		err := u.Go(func(ctx context.Context, num int) (string, error) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Duration(20-num) * 100 * time.Microsecond) // later parts finish first
			running.Add(-1)
			return fmt.Sprintf("etag-%d", num), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if u.Number() != 20 {
		t.Fatalf("Number() = %d, want 20", u.Number())
	}
	got, err := u.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("%d parts, want 20", len(got))
	}
	for i, p := range got {
		if p.Number != i+1 || p.ETag != fmt.Sprintf("etag-%d", i+1) {
			t.Fatalf("part %d is %+v", i, p)
		}
	}
	if p := peak.Load(); p > 3 || p < 1 {
		t.Fatalf("%d parts ran at once, want 1–3", p)
	}
}

// The first failure is what Wait and Err return, it cancels the parts in
// flight, and Go refuses to start another part (its send never runs).
func TestFirstFailureStopsTheRest(t *testing.T) {
	u := New(context.Background(), 2)
	first := errors.New("part 1 refused")
	cancelled := make(chan error, 1)
	second := make(chan struct{}) // part 1 fails once part 2 is under way
	if err := u.Go(func(ctx context.Context, num int) (string, error) { <-second; return "", first }); err != nil {
		t.Fatal(err)
	}
	if err := u.Go(func(ctx context.Context, num int) (string, error) {
		close(second)
		<-ctx.Done()
		cancelled <- ctx.Err()
		return "", fmt.Errorf("part %d: %w", num, ctx.Err())
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the part in flight saw %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the part in flight was not cancelled by the first failure")
	}
	err := u.Go(func(ctx context.Context, num int) (string, error) {
		t.Error("send ran after the first failure")
		return "x", nil
	})
	if !errors.Is(err, first) {
		t.Fatalf("Go after the failure = %v, want %v", err, first)
	}
	parts, err := u.Wait()
	if !errors.Is(err, first) || parts != nil {
		t.Fatalf("Wait() = %v, %v; want nil, %v", parts, err, first)
	}
	if !errors.Is(u.Err(), first) || !errors.Is(u.Failed(), first) {
		t.Fatalf("Err() = %v, Failed() = %v; want %v", u.Err(), u.Failed(), first)
	}
}

// Go on stopped uploads returns at once, without running send: the
// caller keeps its buffer.
func TestGoAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	u := New(ctx, 1)
	block := make(chan struct{})
	if err := u.Go(func(ctx context.Context, num int) (string, error) { <-block; return "a", nil }); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := u.Go(func(ctx context.Context, num int) (string, error) {
		t.Error("send ran on cancelled uploads with no free slot")
		return "", nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Go() = %v, want context.Canceled", err)
	}
	if u.Failed() != nil {
		t.Fatalf("Failed() = %v: a cancel is not a part's failure", u.Failed())
	}
	close(block)
	parts, err := u.Wait()
	if err != nil || len(parts) != 1 || parts[0].Number != 1 {
		t.Fatalf("Wait() = %v, %v; want part 1", parts, err)
	}
	u.Cancel()
}

// Fail keeps the first error only.
func TestFailKeepsTheFirst(t *testing.T) {
	u := New(context.Background(), 1)
	a, b := errors.New("a"), errors.New("b")
	u.Fail(a)
	u.Fail(b)
	if u.Failed() != a || u.Context().Err() == nil {
		t.Fatalf("Failed() = %v, context %v; want a, cancelled", u.Failed(), u.Context().Err())
	}
}
