package cachixserver

import "maps"

// Rejection is one request the server refused (4xx other than auth).
type Rejection struct {
	Endpoint Endpoint
	Method   string
	Path     string
	Status   int
	Message  string
}

// Stats is a snapshot of what the server has seen.
type Stats struct {
	// Requests counts every request per endpoint, faulted ones included.
	Requests map[Endpoint]int
	// Faults counts injected faults per endpoint.
	Faults map[Endpoint]int
	// FaultsInjected is the total of Faults.
	FaultsInjected int
	// BulkQueryCalls and BulkQueryHashes count successful bulk queries
	// and the hashes they carried.
	BulkQueryCalls  int
	BulkQueryHashes int
	// UploadsStarted, UploadsCompleted and UploadsAborted count multipart
	// uploads; DuplicateCompletes counts completions for a store path the
	// cache already had (accepted, nothing changed).
	UploadsStarted     int
	UploadsCompleted   int
	UploadsAborted     int
	DuplicateCompletes int
	// PartsUploaded and PutBytes count accepted storage PUTs and their bytes.
	PartsUploaded int
	PutBytes      int64
	// MaxConcurrentPuts is the most storage PUTs that were in progress at
	// once (a client's parts in flight).
	MaxConcurrentPuts int
	// Rejections lists every refused request (400, 403, 411, 415) in order.
	Rejections []Rejection
	// AuthFailures counts 401 responses; NotFoundCaches counts 404s for
	// unknown caches.
	AuthFailures   int
	NotFoundCaches int
	// HiddenNarinfos counts narinfo requests answered 404 because the
	// path's closure was not complete yet.
	HiddenNarinfos int
	// NarDownloads counts NAR bodies served by the binary-cache view.
	NarDownloads int
	// PinsCreated counts accepted pin revisions.
	PinsCreated int
}

// newStats returns empty stats with their maps allocated.
func newStats() Stats {
	return Stats{Requests: map[Endpoint]int{}, Faults: map[Endpoint]int{}}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = maps.Clone(s.stats.Requests)
	st.Faults = maps.Clone(s.stats.Faults)
	st.Rejections = append([]Rejection(nil), s.stats.Rejections...)
	return st
}

// ResetStats zeroes the counters (the cache contents stay).
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
}
