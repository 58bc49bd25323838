package queue

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RecordTTL is how long a confirmation is trusted before activation checks
// the cache again (caches garbage-collect; other machines push).
const RecordTTL = 7 * 24 * time.Hour

// Records are the store paths each cache confirmed, keyed by cache then by
// RootKey: "storePath", with "!build" for a build closure, "!sel=<fp>" for
// a selection that leaves paths out, "!not-pushed" for a root the
// selection keeps out, and "#pin" for a pinned root (which counts only
// once pinned). Neither '!' nor '#' can occur in a store path.
type Records struct {
	Caches map[string]map[string]time.Time `json:"caches"`
}

func (d *Dir) recordsFile() string { return filepath.Join(d.Path, "pushed.json") }

// LoadRecords reads pushed.json; a missing file is an empty record.
func (d *Dir) LoadRecords() (*Records, error) {
	r := &Records{Caches: map[string]map[string]time.Time{}}
	b, err := os.ReadFile(d.recordsFile())
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, r); err != nil {
		// A damaged record only costs a re-check: start afresh.
		return &Records{Caches: map[string]map[string]time.Time{}}, nil
	}
	if r.Caches == nil {
		r.Caches = map[string]map[string]time.Time{}
	}
	return r, nil
}

// Key is the record key of a root (runtime closure, no selection) and its pin.
func Key(storePath, pin string) string {
	return RootKey(storePath, false, "", pin)
}

// RootKey is the record key of a root: its store path, whether it is
// pushed with its build closure, the fingerprint of the selection that
// decides what a complete closure is ("" for none), and its pin.
func RootKey(storePath string, build bool, selection, pin string) string {
	k := storePath
	if build {
		k += "!build"
	}
	if selection != "" {
		k += "!sel=" + selection
	}
	if pin != "" {
		k += "#" + pin
	}
	return k
}

// NotPushedKey is the record of a root the selection kept out of the
// cache, under the key it would be confirmed with: trusted like a
// confirmation, so that such a root is not pushed again at every
// activation, yet never counted as pushed.
func NotPushedKey(key string) string {
	path, rest := key, ""
	if i := strings.IndexByte(key, '#'); i >= 0 {
		path, rest = key[:i], key[i:]
	}
	return path + "!not-pushed" + rest
}

// Confirmed reports whether key was confirmed in cache within RecordTTL.
func (r *Records) Confirmed(cache, key string, now time.Time) bool {
	t, ok := r.Caches[cache][key]
	return ok && now.Sub(t) < RecordTTL
}

// Record marks keys as confirmed in cache and saves, dropping entries whose
// store path is gone from the store or whose confirmation expired, so the
// file stays small.
func (d *Dir) Record(cache string, keys []string) error {
	lock, err := d.recordsLock()
	if err != nil {
		return err
	}
	defer lock.Release()
	r, err := d.LoadRecords()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	m := r.Caches[cache]
	if m == nil {
		m = map[string]time.Time{}
		r.Caches[cache] = m
	}
	for _, k := range keys {
		m[k] = now
	}
	for c, keys := range r.Caches {
		for k, t := range keys {
			path := k
			if i := strings.IndexAny(k, "!#"); i >= 0 {
				path = k[:i]
			}
			if now.Sub(t) >= RecordTTL {
				delete(keys, k)
			} else if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				delete(keys, k)
			}
		}
		if len(keys) == 0 {
			delete(r.Caches, c)
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(d.recordsFile(), b)
}

// recordsLock serialises read-modify-write of pushed.json.
func (d *Dir) recordsLock() (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(d.Path, "pushed.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f}, nil
}
