package cachixserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Endpoint names one kind of request, for Stats and FailNext.
type Endpoint string

// The endpoints the server implements.
const (
	EndpointCacheInfo         Endpoint = "cache-info"         // GET  /api/v1/cache/{name}
	EndpointNarinfoBulk       Endpoint = "narinfo-bulk"       // POST /api/v1/cache/{name}/narinfo
	EndpointNarinfoHead       Endpoint = "narinfo-head"       // HEAD /api/v1/cache/{name}/{hash}.narinfo
	EndpointNarinfoGet        Endpoint = "narinfo-get"        // GET  /api/v1/cache/{name}/{hash}.narinfo
	EndpointNixCacheInfo      Endpoint = "nix-cache-info"     // GET  /api/v1/cache/{name}/nix-cache-info
	EndpointNar               Endpoint = "nar"                // GET  /api/v1/cache/{name}/nar/{file} (302)
	EndpointNarURL            Endpoint = "narurl"             // GET  /api/v1/cache/{name}/narurl/{file}
	EndpointMultipartCreate   Endpoint = "multipart-create"   // POST /api/v1/cache/{name}/multipart-nar
	EndpointMultipartPresign  Endpoint = "multipart-presign"  // POST /api/v1/cache/{name}/multipart-nar/{narId}
	EndpointStoragePut        Endpoint = "storage-put"        // PUT  /storage/{narId} (presigned)
	EndpointMultipartComplete Endpoint = "multipart-complete" // POST /api/v1/cache/{name}/multipart-nar/{narId}/complete
	EndpointMultipartAbort    Endpoint = "multipart-abort"    // POST /api/v1/cache/{name}/multipart-nar/{narId}/abort
	EndpointPinCreate         Endpoint = "pin-create"         // POST /api/v1/cache/{name}/pin
	EndpointPinList           Endpoint = "pin-list"           // GET  /api/v1/cache/{name}/pin
	EndpointKeyCreate         Endpoint = "key-create"         // POST /api/v1/cache/{name}/key
	EndpointViewCacheInfo     Endpoint = "view-nix-cache-info"
	EndpointViewNarinfo       Endpoint = "view-narinfo"
	EndpointViewNar           Endpoint = "view-nar"
	EndpointUnknown           Endpoint = "unknown"
)

// scope groups endpoints for fault injection.
type scope int

const (
	scopeAPI scope = iota
	scopeStorage
	scopeView
)

const (
	apiPrefix     = "/api/v1/cache/"
	viewPrefix    = "/binary-cache/"
	storagePrefix = "/storage/"
)

// routes wires every endpoint to its handler through the common wrapper.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	api := func(pattern string, ep Endpoint, h http.HandlerFunc) {
		mux.Handle(pattern, s.wrap(ep, scopeAPI, h))
	}
	api("GET /api/v1/cache/{name}", EndpointCacheInfo, s.handleCacheInfo)
	api("POST /api/v1/cache/{name}/narinfo", EndpointNarinfoBulk, s.handleBulk)
	api("GET /api/v1/cache/{name}/{file}", EndpointNarinfoGet, s.handleNarinfo)
	api("GET /api/v1/cache/{name}/nix-cache-info", EndpointNixCacheInfo, s.handleNixCacheInfo)
	api("GET /api/v1/cache/{name}/nar/{file}", EndpointNar, s.handleAPINar)
	api("GET /api/v1/cache/{name}/narurl/{file}", EndpointNarURL, s.handleNarURL)
	api("POST /api/v1/cache/{name}/multipart-nar", EndpointMultipartCreate, s.handleMultipartCreate)
	api("POST /api/v1/cache/{name}/multipart-nar/{narId}", EndpointMultipartPresign, s.handlePresign)
	api("POST /api/v1/cache/{name}/multipart-nar/{narId}/complete", EndpointMultipartComplete, s.handleComplete)
	api("POST /api/v1/cache/{name}/multipart-nar/{narId}/abort", EndpointMultipartAbort, s.handleAbort)
	api("POST /api/v1/cache/{name}/pin", EndpointPinCreate, s.handlePinCreate)
	api("GET /api/v1/cache/{name}/pin", EndpointPinList, s.handlePinList)
	api("POST /api/v1/cache/{name}/key", EndpointKeyCreate, s.handleKeyCreate)

	mux.Handle("PUT /storage/{narId}", s.wrap(EndpointStoragePut, scopeStorage, s.handleStoragePut))

	view := func(pattern string, ep Endpoint, h http.HandlerFunc) {
		mux.Handle(pattern, s.wrap(ep, scopeView, h))
	}
	view("GET /binary-cache/{name}/nix-cache-info", EndpointViewCacheInfo, s.handleNixCacheInfo)
	view("GET /binary-cache/{name}/{file}", EndpointViewNarinfo, s.handleNarinfo)
	view("GET /binary-cache/{name}/nar/{file}", EndpointViewNar, s.handleViewNar)

	mux.Handle("/", s.wrap(EndpointUnknown, scopeView, http.NotFound))
	return mux
}

// serveHTTP records the base URL on first use when none was configured,
// then dispatches.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.baseURL == "" && r.Host != "" {
		s.baseURL = "http://" + r.Host
	}
	s.mu.Unlock()
	s.mux.ServeHTTP(w, r)
}

// statusRecorder remembers the status for the log line; Unwrap keeps
// http.ResponseController (hijacking) working.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status before passing it on.
func (sr *statusRecorder) WriteHeader(code int) {
	if sr.status == 0 {
		sr.status = code
	}
	sr.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (sr *statusRecorder) Write(b []byte) (int, error) {
	if sr.status == 0 {
		sr.status = http.StatusOK
	}
	return sr.ResponseWriter.Write(b)
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (sr *statusRecorder) Unwrap() http.ResponseWriter { return sr.ResponseWriter }

// wrap counts the request, injects a fault if one is due (before any
// state is touched, so a faulted request has no effect), and logs.
func (s *Server) wrap(ep Endpoint, sc scope, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep := ep
		if ep == EndpointNarinfoGet && r.Method == http.MethodHead {
			ep = EndpointNarinfoHead
		}
		s.mu.Lock()
		s.stats.Requests[ep]++
		s.mu.Unlock()
		r = r.WithContext(context.WithValue(r.Context(), endpointKey{}, ep))
		rec := &statusRecorder{ResponseWriter: w}
		if kind, ok := s.faults.decide(ep, sc); ok {
			s.mu.Lock()
			s.stats.FaultsInjected++
			s.stats.Faults[ep]++
			s.mu.Unlock()
			s.logf("%s %s [%s] -> injected fault %s", r.Method, r.URL.Path, ep, kind)
			s.faults.inject(rec, r, kind)
			return
		}
		h(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		s.logf("%s %s [%s] -> %d", r.Method, r.URL.Path, ep, status)
	})
}

// reject answers a request the protocol does not allow: a plain-text
// message with the given status, recorded in Stats.Rejections.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, status int, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	s.mu.Lock()
	s.stats.Rejections = append(s.stats.Rejections, Rejection{
		Endpoint: endpointOf(r), Method: r.Method, Path: r.URL.Path, Status: status, Message: msg,
	})
	s.mu.Unlock()
	s.logf("rejected %s %s: %d %s", r.Method, r.URL.Path, status, msg)
	writeText(w, status, msg)
}

// writeText sends a plain-text response.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// writeJSON sends a JSON response the way Servant does.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// endpointKey is the context key under which wrap stores the endpoint.
type endpointKey struct{}

// endpointOf recovers the endpoint of a request for rejection records.
func endpointOf(r *http.Request) Endpoint {
	if ep, ok := r.Context().Value(endpointKey{}).(Endpoint); ok {
		return ep
	}
	return EndpointUnknown
}
