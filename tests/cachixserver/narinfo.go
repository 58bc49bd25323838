package cachixserver

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// narinfoEntry is one published store path; immutable once stored.
type narinfoEntry struct {
	hash        string
	suffix      string
	narHash     string
	narSize     int64
	fileHash    string // lower-case hex
	fileSize    int64
	ext         string // "zst" or "xz"
	references  []string
	deriver     string
	sig         string // keyname:base64
	fingerprint string
	createdOn   time.Time
}

// storePath is the entry's full store path.
func (e *narinfoEntry) storePath() string { return storeDir + "/" + e.hash + "-" + e.suffix }

// narFile is the NAR's file name under nar/: <hex>.nar.<ext>.
func (e *narinfoEntry) narFile() string { return e.fileHash + ".nar." + e.ext }

// compressionName is the narinfo Compression value for the extension.
func (e *narinfoEntry) compressionName() string {
	if e.ext == "zst" {
		return "zstd"
	}
	return e.ext
}

// text renders the narinfo as Cachix serves it (protocol §4.14).
func (e *narinfoEntry) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "StorePath: %s\n", e.storePath())
	fmt.Fprintf(&b, "URL: nar/%s\n", e.narFile())
	fmt.Fprintf(&b, "Compression: %s\n", e.compressionName())
	fmt.Fprintf(&b, "FileHash: sha256:%s\n", e.fileHash)
	fmt.Fprintf(&b, "FileSize: %d\n", e.fileSize)
	fmt.Fprintf(&b, "NarHash: %s\n", e.narHash)
	fmt.Fprintf(&b, "NarSize: %d\n", e.narSize)
	fmt.Fprintf(&b, "References: %s\n", strings.Join(e.references, " "))
	fmt.Fprintf(&b, "Deriver: %s\n", e.deriver)
	fmt.Fprintf(&b, "Sig: %s\n", e.sig)
	return b.String()
}

// narinfoJSON is the JSON form of a narinfo (sorki/nix-narinfo field names).
type narinfoJSON struct {
	StorePath   string   `json:"storePath"`
	URL         string   `json:"url"`
	Compression string   `json:"compression"`
	FileHash    string   `json:"fileHash"`
	FileSize    int64    `json:"fileSize"`
	NarHash     string   `json:"narHash"`
	NarSize     int64    `json:"narSize"`
	References  []string `json:"references"`
	Deriver     *string  `json:"deriver"`
	System      *string  `json:"system"`
	Sig         *string  `json:"sig"`
	CA          *string  `json:"ca"`
}

// json renders the entry in the JSON form.
func (e *narinfoEntry) json() narinfoJSON {
	j := narinfoJSON{
		StorePath:   e.storePath(),
		URL:         "nar/" + e.narFile(),
		Compression: e.compressionName(),
		FileHash:    "sha256:" + e.fileHash,
		FileSize:    e.fileSize,
		NarHash:     e.narHash,
		NarSize:     e.narSize,
		References:  append([]string{}, e.references...),
		Sig:         &e.sig,
	}
	if e.deriver != unknownDeriver {
		j.Deriver = &e.deriver
	}
	return j
}

// isCompleteLocked reports whether hash's narinfo and, transitively, those
// of all its references are present, in the cache or upstream: only then
// is it served (Cachix never serves a narinfo without its full closure).
// Caller holds s.mu.
func (c *cache) isCompleteLocked(hash string) bool {
	visiting := map[string]bool{}
	var visit func(h string) bool
	visit = func(h string) bool {
		if c.complete[h] || c.upstream[h] {
			return true
		}
		e := c.narinfos[h]
		if e == nil {
			return false
		}
		if visiting[h] {
			return true
		}
		visiting[h] = true
		for _, ref := range e.references {
			if rh := ref[:32]; rh != h && !visit(rh) {
				return false
			}
		}
		c.complete[h] = true
		return true
	}
	return visit(hash)
}

// handleBulk answers the bulk query: POST narinfo with a JSON array of
// hash parts; the response lists those the cache has no narinfo for. A
// path counts as present as soon as its narinfo was created, even while
// it is still hidden for an incomplete closure, and so does a path that
// upstream has (SetUpstream), as Cachix does for cache.nixos.org's.
func (s *Server) handleBulk(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	body, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	var items []json.RawMessage
	if isNull(body) {
		s.reject(w, r, http.StatusBadRequest, "expected a JSON array of store path hashes, got null")
		return
	}
	if err := decodeValue(body, &items); err != nil {
		s.reject(w, r, http.StatusBadRequest, "expected a JSON array of store path hashes: %v", err)
		return
	}
	if len(items) > MaxBulkHashes {
		s.reject(w, r, http.StatusBadRequest, "too many hashes: %d (at most %d per request)", len(items), MaxBulkHashes)
		return
	}
	hashes := make([]string, len(items))
	for i, it := range items {
		h, err := object{"hash": it}.str("hash")
		if err == nil {
			err = checkHashPart(h)
		}
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, "element %d: %v (want the 32-character hash part only)", i, err)
			return
		}
		hashes[i] = h
	}
	missing := []string{}
	s.mu.Lock()
	for _, h := range hashes {
		if c.narinfos[h] == nil && !c.upstream[h] {
			missing = append(missing, h)
		}
	}
	s.stats.BulkQueryCalls++
	s.stats.BulkQueryHashes += len(hashes)
	s.mu.Unlock()
	writeJSON(w, missing)
}

// wantsJSON reports whether the client asked for JSON rather than narinfo text.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/x-nix-narinfo":
			return false
		case "application/json":
			return true
		}
	}
	return false
}

// handleNarinfo serves HEAD/GET <hash>.narinfo in the API and the
// binary-cache view; incomplete closures are 404.
func (s *Server) handleNarinfo(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	file := r.PathValue("file")
	hash, ok := strings.CutSuffix(file, ".narinfo")
	if !ok || checkHashPart(hash) != nil {
		if strings.HasPrefix(r.URL.Path, viewPrefix) {
			http.NotFound(w, r)
			return
		}
		s.reject(w, r, http.StatusBadRequest, "%q is not <hash>.narinfo with a 32-character nix-base32 hash", file)
		return
	}
	s.mu.Lock()
	e := c.narinfos[hash]
	complete := e != nil && c.isCompleteLocked(hash)
	if e != nil && !complete {
		s.stats.HiddenNarinfos++
	}
	s.mu.Unlock()
	if !complete {
		writeText(w, http.StatusNotFound, "404 Not Found")
		return
	}
	if wantsJSON(r) {
		writeJSON(w, e.json())
		return
	}
	body := e.text()
	w.Header().Set("Content-Type", "text/x-nix-narinfo")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

// handleNixCacheInfo serves nix-cache-info (priority 41, as Cachix does).
func (s *Server) handleNixCacheInfo(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	w.Header().Set("Content-Type", "text/x-nix-cache-info")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "StoreDir: "+storeDir+"\nWantMassQuery: 1\nPriority: 41\n")
}

// lookupNar finds a stored NAR by file name (<hex>.nar.<ext>).
func (s *Server) lookupNar(c *cache, file string) *narBlob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.nars[file]
}

// handleViewNar streams a stored compressed NAR to Nix.
func (s *Server) handleViewNar(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	nb := s.lookupNar(c, r.PathValue("file"))
	if nb == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-nix-nar")
	w.Header().Set("Content-Length", strconv.FormatInt(nb.n, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	s.mu.Lock()
	s.stats.NarDownloads++
	s.mu.Unlock()
	rc := nb.open()
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		s.logf("streaming %s: %v", r.URL.Path, err)
	}
}

// handleAPINar answers the API's NAR endpoint with a 302 to the view, as
// Cachix redirects to storage.
func (s *Server) handleAPINar(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	file := r.PathValue("file")
	if s.lookupNar(c, file) == nil {
		http.NotFound(w, r)
		return
	}
	http.Redirect(w, r, s.BinaryCacheURL(c.name)+"/nar/"+file, http.StatusFound)
}

// handleNarURL returns the NAR's download URL as a JSON string.
func (s *Server) handleNarURL(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	file := r.PathValue("file")
	if s.lookupNar(c, file) == nil {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, s.BinaryCacheURL(c.name)+"/nar/"+file)
}

// cacheInfo is the GET /cache/{name} response; all seven fields required.
type cacheInfo struct {
	Name                       string   `json:"name"`
	URI                        string   `json:"uri"`
	IsPublic                   bool     `json:"isPublic"`
	PublicSigningKeys          []string `json:"publicSigningKeys"`
	GithubUsername             string   `json:"githubUsername"`
	Permission                 string   `json:"permission"`
	PreferredCompressionMethod string   `json:"preferredCompressionMethod"`
}

// handleCacheInfo answers GET /cache/{name}.
func (s *Server) handleCacheInfo(w http.ResponseWriter, r *http.Request) {
	c, perm := s.authorize(w, r, permRead)
	if c == nil {
		return
	}
	s.mu.Lock()
	info := cacheInfo{
		Name:                       c.name,
		URI:                        s.baseURL + viewPrefix + c.name,
		IsPublic:                   c.public,
		PublicSigningKeys:          []string{},
		GithubUsername:             c.github,
		Permission:                 perm.String(),
		PreferredCompressionMethod: c.compression,
	}
	if k := c.nixPublicKey(); k != "" {
		info.PublicSigningKeys = append(info.PublicSigningKeys, k)
	}
	s.mu.Unlock()
	writeJSON(w, info)
}

// handleKeyCreate registers a self-signed cache's public key:
// POST /cache/{name}/key with {"publicKey": bare base64}.
func (s *Server) handleKeyCreate(w http.ResponseWriter, r *http.Request) {
	c, _ := s.authorize(w, r, permWrite)
	if c == nil {
		return
	}
	body, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	o, err := decodeObject(body, "request body", "publicKey")
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	k, err := o.str("publicKey")
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "%v", err)
		return
	}
	pk, err := parseBarePublicKey(k)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, "publicKey: %v", err)
		return
	}
	s.mu.Lock()
	if !c.selfSigned || c.publicKey != nil {
		s.mu.Unlock()
		s.reject(w, r, http.StatusBadRequest, "Public signing key already exists. "+
			"It's currently not possible to override or add multiple signing keys.")
		return
	}
	c.publicKey = pk
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// NarInfo describes one narinfo the server holds.
type NarInfo struct {
	StorePath   string
	URL         string
	Compression string
	FileHash    string // sha256:<hex>
	FileSize    int64
	NarHash     string // sha256:<nix32>
	NarSize     int64
	References  []string // base names, sorted
	Deriver     string
	Sig         string // keyname:base64
	// Complete is true when the narinfo is served, i.e. its closure is complete.
	Complete  bool
	CreatedOn time.Time
}

// StorePaths lists the narinfos cache name holds, sorted by store path.
func (s *Server) StorePaths(name string) []NarInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.caches[name]
	if c == nil {
		return nil
	}
	out := make([]NarInfo, 0, len(c.narinfos))
	for h, e := range c.narinfos {
		out = append(out, NarInfo{
			StorePath:   e.storePath(),
			URL:         "nar/" + e.narFile(),
			Compression: e.compressionName(),
			FileHash:    "sha256:" + e.fileHash,
			FileSize:    e.fileSize,
			NarHash:     e.narHash,
			NarSize:     e.narSize,
			References:  append([]string(nil), e.references...),
			Deriver:     e.deriver,
			Sig:         e.sig,
			Complete:    c.isCompleteLocked(h),
			CreatedOn:   e.createdOn,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StorePath < out[j].StorePath })
	return out
}
