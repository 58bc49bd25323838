package glob_test

import (
	"strings"
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/internal/glob"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		include, exclude []string
		name             string
		want             bool
	}{
		{nil, nil, "anything", true},
		{[]string{"hello*"}, nil, "hello-2.12", true},
		{[]string{"hello*"}, nil, "jq", false},
		{[]string{"*"}, []string{"*-dev"}, "lib-dev", false},
		{nil, []string{"jq"}, "jq", false},
		{[]string{"a/*"}, nil, "a/b/c", false}, // * does not cross a slash
	}
	for _, tt := range tests {
		f, err := glob.New(tt.include, tt.exclude)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(tt.name); got != tt.want {
			t.Errorf("include %v exclude %v: Match(%q) = %v", tt.include, tt.exclude, tt.name, got)
		}
	}
	if _, err := glob.New(nil, []string{"["}); err == nil || !strings.Contains(err.Error(), `pattern "[": syntax error`) {
		t.Errorf("bad pattern: %v", err)
	}
}
