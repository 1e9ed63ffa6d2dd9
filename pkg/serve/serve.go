// Package serve is archive-serve: a read-only HTTP server over a manifest
// root and a CAS root that plays archived broadcasts back as HLS (fMP4
// segments, one per group, addressed by content), with a JSON API of their
// time coverage and a page that plays them. The behaviour is specified in
// docs/serve.md.
package serve

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/every-channel/ec-node/pkg/cas"
	"github.com/zeebo/blake3"
)

// DefaultVerified is how many verified object ids are remembered.
const DefaultVerified = 1 << 20

// MaxObject bounds an object read whole into memory to verify it.
const MaxObject = 256 << 20

// Options configure a Server.
type Options struct {
	ManifestDir string
	Store       cas.Store
	// StoreRoot is only used to name objects in logs.
	StoreRoot string
	Log       *slog.Logger
	// Verified bounds the set of object ids verified (0: DefaultVerified).
	Verified int
}

// Server serves one archive.
type Server struct {
	opts  Options
	log   *slog.Logger
	cache *cache
	mux   *http.ServeMux
}

//go:embed web
var webFS embed.FS

// New returns a Server.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Verified <= 0 {
		opts.Verified = DefaultVerified
	}
	s := &Server{opts: opts, log: opts.Log, cache: newCache(opts.Verified), mux: http.NewServeMux()}
	web, _ := fs.Sub(webFS, "web")
	s.mux.Handle("GET /{$}", http.FileServerFS(web))
	s.mux.Handle("GET /vendor/", http.FileServerFS(web))
	s.mux.HandleFunc("GET /api/broadcasts", s.apiBroadcasts)
	s.mux.HandleFunc("GET /api/broadcasts/{b}", s.apiBroadcast)
	s.mux.HandleFunc("GET /hls/{b}/index.m3u8", s.multivariant)
	s.mux.HandleFunc("GET /hls/{b}/{t}/index.m3u8", s.mediaPlaylist)
	s.mux.HandleFunc("GET /objects/blake3/{file}", s.object)
	s.mux.HandleFunc("GET /init/{file}", s.init)
	return s
}

// ServeHTTP serves the archive read-only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// zeroTime leaves Last-Modified out: objects are named by content (ETag).
var zeroTime time.Time

// ErrCorrupt means an object's bytes do not hash to its id.
var ErrCorrupt = errors.New("content does not match its id")

// objectPath names an object in logs and errors.
func (s *Server) objectPath(id cas.ID) string {
	return filepath.Join(s.opts.StoreRoot, filepath.FromSlash(cas.ObjectPath(id)))
}

// readVerified reads an object whole and re-hashes it. size, when >= 0, is
// the size the manifest gives. A corrupt object is logged naming its hash
// and path.
func (s *Server) readVerified(ctx context.Context, id cas.ID, size int64) ([]byte, error) {
	r, err := s.opts.Store.Open(ctx, id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, MaxObject+1))
	if err != nil {
		return nil, fmt.Errorf("object %s (%s): %w", id, s.objectPath(id), err)
	}
	if len(data) > MaxObject {
		return nil, fmt.Errorf("object %s (%s): larger than %d bytes", id, s.objectPath(id), MaxObject)
	}
	if sum := cas.ID(blake3.Sum256(data)); sum != id || size >= 0 && int64(len(data)) != size {
		s.log.Error("archive-serve: corrupt object", "hash", id.String(), "path", s.objectPath(id), "bytes_hash", sum.String(), "size", len(data))
		return nil, fmt.Errorf("object %s (%s): %w: its %d bytes hash to %s", id, s.objectPath(id), ErrCorrupt, len(data), sum)
	}
	s.cache.setVerified(id)
	return data, nil
}

// immutable sets the headers of content named by its hash.
func immutable(w http.ResponseWriter, id cas.ID, contentType string) {
	h := w.Header()
	h.Set("ETag", `"`+id.String()+`"`)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Content-Type", contentType)
}

// parseFile parses "<64 hex>.<ext>" from a request path.
func parseFile(name, ext string) (cas.ID, bool) {
	hex, ok := strings.CutSuffix(name, "."+ext)
	if !ok {
		return cas.ID{}, false
	}
	id, err := cas.ParseID(hex)
	return id, err == nil
}

// object serves /objects/blake3/<hash>.m4s: a group's payload, verified the
// first time it is served (and whenever the id was forgotten since).
func (s *Server) object(w http.ResponseWriter, r *http.Request) {
	id, ok := parseFile(r.PathValue("file"), "m4s")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !s.cache.isVerified(id) {
		data, err := s.readVerified(r.Context(), id, -1)
		if err != nil {
			s.objectError(w, r, id, err)
			return
		}
		immutable(w, id, "video/mp4")
		http.ServeContent(w, r, "", zeroTime, bytes.NewReader(data))
		return
	}
	rc, err := s.opts.Store.Open(r.Context(), id)
	if err != nil {
		s.objectError(w, r, id, err)
		return
	}
	defer rc.Close()
	rs, ok := rc.(io.ReadSeeker)
	if !ok {
		data, err := io.ReadAll(io.LimitReader(rc, MaxObject))
		if err != nil {
			s.objectError(w, r, id, err)
			return
		}
		rs = bytes.NewReader(data)
	}
	immutable(w, id, "video/mp4")
	http.ServeContent(w, r, "", zeroTime, rs)
}

func (s *Server) objectError(w http.ResponseWriter, r *http.Request, id cas.ID, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	}
	if !errors.Is(err, ErrCorrupt) { // corrupt objects were logged when read
		s.log.Error("archive-serve: object unreadable", "hash", id.String(), "path", s.objectPath(id), "err", err)
	}
	msg := "object " + id.String() + " is unreadable"
	if errors.Is(err, ErrCorrupt) {
		msg = "object " + id.String() + " is corrupt: its bytes do not hash to its id"
	}
	http.Error(w, msg, http.StatusInternalServerError)
}

// init serves /init/<hash>.mp4: an init segment from a catalog read earlier.
func (s *Server) init(w http.ResponseWriter, r *http.Request) {
	id, ok := parseFile(r.PathValue("file"), "mp4")
	data, cached := s.cache.init(id)
	if !ok || !cached {
		http.NotFound(w, r)
		return
	}
	immutable(w, id, "video/mp4")
	http.ServeContent(w, r, "", zeroTime, bytes.NewReader(data))
}
