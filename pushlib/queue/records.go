package queue

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// RecordTTL is how long a confirmation is trusted before activation checks
// the cache again (caches garbage-collect; other machines push).
const RecordTTL = 7 * 24 * time.Hour

// Records are the store paths each cache confirmed, keyed by cache then by
// "storePath" or "storePath#pin" (a pinned root counts only once pinned).
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

// Key is the record key of a root and its pin.
func Key(storePath, pin string) string {
	if pin == "" {
		return storePath
	}
	return storePath + "#" + pin
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
			if i := indexHash(k); i >= 0 {
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

// indexHash finds the '#' separating a pin from the store path.
func indexHash(k string) int {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '#' {
			return i
		}
		if k[i] == '/' {
			return -1
		}
	}
	return -1
}
