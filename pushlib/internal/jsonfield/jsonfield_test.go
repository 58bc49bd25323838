package jsonfield_test

import (
	"testing"

	"github.com/cachix-select/cachix-select/pushlib/internal/jsonfield"
)

func TestWalk(t *testing.T) {
	t.Parallel()
	root := jsonfield.Root([]byte(`{"cache": {"name": "c", "odd key": 3}, "paths": [{"storePath": 1}], "n": null, "ok": true}`))
	top, ok := root.Object()
	if !ok || top.Len() != 4 {
		t.Fatalf("top: %v %d", ok, top.Len())
	}
	cache, _ := top.Get("cache").Object()
	if name, ok := cache.Get("name").Text(); !ok || name != "c" || cache.Get("name").Path != "cache.name" {
		t.Errorf("cache.name = %q %v at %q", name, ok, cache.Get("name").Path)
	}
	odd := cache.Get("odd key")
	if odd.Path != `cache["odd key"]` || odd.Describe() != "the number 3" {
		t.Errorf("odd key at %q: %s", odd.Path, odd.Describe())
	}
	items, ok := top.Get("paths").Array()
	if !ok || len(items) != 1 {
		t.Fatalf("paths: %v", ok)
	}
	obj, _ := items[0].Object()
	if sp := obj.Get("storePath"); sp.Path != "paths[0].storePath" || sp.Kind() != "a number" {
		t.Errorf("storePath at %q is %s", sp.Path, sp.Kind())
	}
	if missing := obj.Get("name"); !missing.Absent() || !missing.Null() || missing.Kind() != "nothing" {
		t.Errorf("an absent field: absent %v null %v kind %s", missing.Absent(), missing.Null(), missing.Kind())
	}
	if n := top.Get("n"); n.Absent() || !n.Null() || n.Kind() != "null" {
		t.Errorf("null: absent %v null %v kind %s", n.Absent(), n.Null(), n.Kind())
	}
	if b, ok := top.Get("ok").Bool(); !ok || !b {
		t.Error("ok is not true")
	}
	if _, ok := top.Get("ok").Text(); ok {
		t.Error("a boolean read as a string")
	}
	if got := jsonfield.Of("result/bin/foo").Describe(); got != `the string "result/bin/foo"` {
		t.Errorf("Of: %s", got)
	}
	if got := top.Keys(); len(got) != 4 || got[0] != "cache" || got[3] != "paths" {
		t.Errorf("keys %v", got)
	}
}
