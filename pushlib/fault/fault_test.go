package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/fault"
)

func TestClassification(t *testing.T) {
	t.Parallel()
	errBad := fault.BadInput("bad thing")
	errPerm := fault.Permanent("refused")
	other := errors.New("connection reset")
	tests := []struct {
		name           string
		err            error
		bad, permanent bool
		is             error
		msg            string
	}{
		{"bad-input sentinel, wrapped", fmt.Errorf("reading m.json: %w", errBad), true, true, errBad, "reading m.json: bad thing"},
		{"permanent sentinel, wrapped", fmt.Errorf("uploading: %w", errPerm), false, true, errPerm, "uploading: refused"},
		{"BadInputf keeps the cause", fault.BadInputf("parsing: %w", other), true, true, other, "parsing: connection reset"},
		{"unmarked", fmt.Errorf("uploading: %w", other), false, false, other, "uploading: connection reset"},
	}
	for _, tt := range tests {
		if got := errors.Is(tt.err, fault.ErrBadInput); got != tt.bad {
			t.Errorf("%s: bad input = %v", tt.name, got)
		}
		if got := fault.IsPermanent(tt.err); got != tt.permanent {
			t.Errorf("%s: IsPermanent = %v", tt.name, got)
		}
		if !errors.Is(tt.err, tt.is) {
			t.Errorf("%s: lost its identity", tt.name)
		}
		if tt.err.Error() != tt.msg {
			t.Errorf("%s: message %q, want %q", tt.name, tt.err, tt.msg)
		}
	}
	if errors.Is(errBad, errPerm) || errors.Is(errPerm, errBad) {
		t.Error("two sentinels match each other")
	}
}
