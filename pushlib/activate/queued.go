package activate

import (
	"github.com/cachix-select/cachix-select/pushlib/manifest"
	"github.com/cachix-select/cachix-select/pushlib/queue"
	"github.com/cachix-select/cachix-select/pushlib/target"
)

// Queued is one queued entry, as `queue list` shows it.
type Queued struct {
	*queue.Entry
	// Cache names the entry's cache (or says why its manifest is unreadable).
	Cache string
	// Paths are the manifest's store paths.
	Paths []string
}

// List reads the queue in d; entries that cannot be read are returned in
// bad, not skipped silently.
func List(d *queue.Dir, opts target.Options) (entries []Queued, bad []error, err error) {
	all, bad, err := d.List()
	if err != nil {
		return nil, nil, err
	}
	for _, e := range all {
		q := Queued{Entry: e, Paths: []string{}}
		if m, err := manifest.Parse(e.Manifest, e.ManifestFile); err == nil {
			q.Cache = m.Cache.Name
			if ref, err := target.ResolveRef(opts, m.Layer()); err == nil {
				q.Cache = ref.String()
			}
			for _, p := range m.Paths {
				q.Paths = append(q.Paths, p.StorePath)
			}
		} else {
			q.Cache = "(unreadable manifest: " + err.Error() + ")"
		}
		entries = append(entries, q)
	}
	return entries, bad, nil
}
