// Package s3cas is a cas.Store in an S3-compatible bucket. Objects are keyed
// exactly like the local layout, under an optional key prefix:
//
//	<prefix>objects/blake3/<first 2 hex>/<64 hex>.bin
//
// so a bucket can be synced to or from a local CAS root with any S3 tool. The
// write path, specified in docs/cas-layout.md ("S3-compatible stores"):
//
//  1. Write hashes the bytes as they stream and spools them: in memory up to
//     SpoolMemory, then to an already unlinked temp file (a crash leaves
//     nothing). The key is the hash, known only after the last byte, and a
//     retried request must resend the body, so the bytes are kept until Commit.
//  2. Commit uploads create-only: PutObject with If-None-Match: *, or for
//     objects larger than PartSize a multipart upload whose completion carries
//     If-None-Match: *. A 412 answer means the object is already stored: a dedup
//     hit, reported with New false.
//  3. Servers without conditional writes (Config.Unconditional): a HEAD first,
//     then a plain PUT. Two writers of the same object may then both upload it
//     (the bytes are identical, so nothing is lost) and both report New.
//
// Transient errors (5xx, throttling, refused or reset connections) are retried
// by the SDK's standard retryer with jittered exponential backoff, MaxAttempts
// tries per request. Credentials come from the usual AWS chain (environment,
// shared config and credentials files, SSO, web identity, instance metadata) and
// are never logged.
package s3cas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/zeebo/blake3"

	"github.com/every-channel/ec-node/pkg/cas"
)

// Defaults for Config fields left zero.
const (
	DefaultPartSize    = 16 << 20
	DefaultSpoolMemory = 256 << 10
	DefaultMaxAttempts = 5
	DefaultRegion      = "us-east-1"
	// DefaultRequestTimeout bounds one HTTP attempt: a part of DefaultPartSize
	// at about 2 Mbit/s.
	DefaultRequestTimeout = time.Minute
)

// S3 limits multipart uploads to 10,000 parts of at least 5 MiB (except the last).
const (
	minPartSize = 5 << 20
	maxParts    = 10000
)

// Config names a bucket and says how to reach it.
type Config struct {
	Bucket string
	// Prefix is prepended to every key; "" or a path ending in "/".
	Prefix string
	// Endpoint is the server's base URL (http://127.0.0.1:8333) for an
	// S3-compatible server, addressed path-style; "" means AWS itself.
	Endpoint string
	// Region, if empty, comes from the AWS chain, else DefaultRegion.
	Region string
	// Anonymous sends unsigned requests (a public or unauthenticated server).
	Anonymous bool
	// Unconditional is for servers that ignore or reject If-None-Match: a HEAD
	// then a plain PUT instead of a create-only PUT.
	Unconditional bool
	// PartSize is the multipart part size and the size above which an object is
	// uploaded in parts (default DefaultPartSize, at least 5 MiB).
	PartSize int64
	// SpoolMemory is how much of an object is kept in memory before it spills
	// to a temp file in SpoolDir (default DefaultSpoolMemory; SpoolDir "" means
	// os.TempDir()).
	SpoolMemory int
	SpoolDir    string
	// MaxAttempts bounds the tries of one request (default DefaultMaxAttempts).
	MaxAttempts int
	// RequestTimeout bounds one attempt of a request, response body included
	// (default DefaultRequestTimeout). Without it a server that accepts a
	// request and never answers would hold the commit forever, and with it,
	// since a broadcast's entries are delivered in order, the whole broadcast.
	RequestTimeout time.Duration
}

// ParseURL parses
// s3://bucket/prefix?endpoint=URL&region=R&anonymous=1&conditional=0&request-timeout=1m
// into a Config. The prefix, if any, gets a trailing "/".
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("s3 store url: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return Config{}, fmt.Errorf("s3 store url %q: want s3://BUCKET[/PREFIX][?endpoint=URL&region=R]", raw)
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if c.Prefix != "" {
		c.Prefix += "/"
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Config{}, fmt.Errorf("s3 store url: endpoint %q: want http(s)://HOST[:PORT]", v)
			}
			c.Endpoint = v
		case "region":
			c.Region = v
		case "request-timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return Config{}, fmt.Errorf("s3 store url: request-timeout=%q: want a positive duration (30s, 2m)", v)
			}
			c.RequestTimeout = d
		case "anonymous", "conditional":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("s3 store url: %s=%q: want true or false", k, v)
			}
			if k == "anonymous" {
				c.Anonymous = b
			} else {
				c.Unconditional = !b
			}
		default:
			return Config{}, fmt.Errorf("s3 store url: unknown parameter %q (known: endpoint, region, anonymous, conditional, request-timeout)", k)
		}
	}
	return c, nil
}

// Store is a cas.Store in a bucket. Its methods are safe for concurrent use.
type Store struct {
	client *s3.Client
	cfg    Config
}

var _ cas.Store = (*Store)(nil)

// Open connects to the bucket and checks that it exists and is reachable.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 store: no bucket")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize {
		return nil, fmt.Errorf("s3 store: part size %d below the S3 minimum of %d", cfg.PartSize, minPartSize)
	}
	if cfg.SpoolMemory == 0 {
		cfg.SpoolMemory = DefaultSpoolMemory
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryMaxAttempts(cfg.MaxAttempts),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(cfg.RequestTimeout)),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: aws config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		if cfg.Anonymous {
			o.Credentials = aws.AnonymousCredentials{}
		}
		// Integrity is the BLAKE3 id, checked on every read; the SDK's default
		// CRC trailers are not understood by every S3-compatible server.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	s := &Store{client: client, cfg: cfg}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return nil, fmt.Errorf("s3 store %s: bucket: %w", s, err)
	}
	return s, nil
}

// String names the store as an s3:// URL, without credentials.
func (s *Store) String() string {
	u := url.URL{Scheme: "s3", Host: s.cfg.Bucket, Path: "/" + s.cfg.Prefix}
	if s.cfg.Endpoint != "" {
		u.RawQuery = url.Values{"endpoint": {s.cfg.Endpoint}}.Encode()
	}
	return u.String()
}

// Key returns the object key of id: the prefix and cas.ObjectPath(id).
func (s *Store) Key(id cas.ID) string { return s.cfg.Prefix + cas.ObjectPath(id) }

// Open returns the object's bytes.
func (s *Store) Open(ctx context.Context, id cas.ID) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: aws.String(s.Key(id))})
	if err != nil {
		return nil, fmt.Errorf("s3 store: open object %s: %w", id, notExist(err))
	}
	return out.Body, nil
}

// Stat returns the object's size.
func (s *Store) Stat(ctx context.Context, id cas.ID) (int64, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: aws.String(s.Key(id))})
	if err != nil {
		return 0, fmt.Errorf("s3 store: stat object %s: %w", id, notExist(err))
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Create starts a new object.
func (s *Store) Create(ctx context.Context) (cas.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3 store: create: %w", err)
	}
	return &writer{ctx: ctx, s: s, h: blake3.New(), spool: spool{dir: s.cfg.SpoolDir, memLimit: s.cfg.SpoolMemory}}, nil
}

var errWriterDone = errors.New("s3 store: object writer already committed or aborted")

type writer struct {
	ctx   context.Context
	s     *Store
	h     *blake3.Hasher
	spool spool
	err   error // first write error; Commit refuses to publish after one
	done  bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = fmt.Errorf("s3 store: write: %w", err)
		return 0, w.err
	}
	if err := w.spool.write(p); err != nil {
		w.err = fmt.Errorf("s3 store: spool: %w", err)
		return 0, w.err
	}
	w.h.Write(p)
	return len(p), nil
}

func (w *writer) Commit() (cas.PutResult, error) {
	if w.done {
		return cas.PutResult{}, errWriterDone
	}
	defer w.Abort()
	if w.err != nil {
		return cas.PutResult{}, w.err
	}
	if err := w.ctx.Err(); err != nil {
		return cas.PutResult{}, fmt.Errorf("s3 store: commit: %w", err)
	}
	var id cas.ID
	w.h.Sum(id[:0])
	res := cas.PutResult{ID: id, Size: w.spool.size, Path: cas.ObjectPath(id)}
	isNew, err := w.s.upload(w.ctx, w.s.Key(id), w.spool.reader(), w.spool.size)
	if err != nil {
		return cas.PutResult{}, fmt.Errorf("s3 store: commit object %s: %w", id, err)
	}
	res.New = isNew
	return res, nil
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.spool.close()
}

// upload stores body under key unless the key exists; it reports whether it
// created the object.
func (s *Store) upload(ctx context.Context, key string, body io.ReaderAt, size int64) (bool, error) {
	if s.cfg.Unconditional {
		_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
		if err == nil {
			return false, nil
		}
		if err = notExist(err); !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	var ifNoneMatch *string
	if !s.cfg.Unconditional {
		ifNoneMatch = aws.String("*")
	}
	var err error
	if size <= s.cfg.PartSize {
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.cfg.Bucket, Key: &key, IfNoneMatch: ifNoneMatch,
			Body: io.NewSectionReader(body, 0, size), ContentLength: aws.Int64(size),
		})
	} else {
		err = s.multipart(ctx, key, body, size, ifNoneMatch)
	}
	if statusCode(err) == 412 {
		return false, nil // create-only put refused: already stored
	}
	return err == nil, err
}

// multipart uploads body in parts of PartSize and completes the upload
// create-only. On any failure the upload is aborted so that no parts linger.
func (s *Store) multipart(ctx context.Context, key string, body io.ReaderAt, size int64, ifNoneMatch *string) error {
	partSize := max(s.cfg.PartSize, (size+maxParts-1)/maxParts)
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+partSize, n+1 {
		length := min(partSize, size-off)
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &s.cfg.Bucket, Key: &key, UploadId: created.UploadId, PartNumber: aws.Int32(n),
			Body: io.NewSectionReader(body, off, length), ContentLength: aws.Int64(length),
		})
		if err != nil {
			s.abortMultipart(ctx, key, created.UploadId)
			return fmt.Errorf("part %d: %w", n, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &key, UploadId: created.UploadId, IfNoneMatch: ifNoneMatch,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		s.abortMultipart(ctx, key, created.UploadId)
	}
	return err
}

func (s *Store) abortMultipart(ctx context.Context, key string, uploadID *string) {
	// Best effort, also after cancellation: a lingering upload only costs
	// space until the bucket's abort-incomplete-multipart lifecycle rule.
	s.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
		Bucket: &s.cfg.Bucket, Key: &key, UploadId: uploadID,
	})
}

// statusCode is the HTTP status of a failed request, 0 if there was none.
func statusCode(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// notExist makes a 404 answer satisfy errors.Is(err, fs.ErrNotExist).
func notExist(err error) error {
	var nsk *types.NoSuchKey
	if statusCode(err) == 404 || errors.As(err, &nsk) {
		return fmt.Errorf("%w (%w)", fs.ErrNotExist, err)
	}
	return err
}

// spool keeps an object's bytes until Commit: in memory up to memLimit, then in
// a temp file that is unlinked as soon as it is created.
type spool struct {
	dir      string
	memLimit int
	mem      []byte
	f        *os.File
	size     int64
}

func (s *spool) write(p []byte) error {
	if s.f == nil && int(s.size)+len(p) <= s.memLimit {
		s.mem = append(s.mem, p...)
		s.size += int64(len(p))
		return nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "ec-node-s3-spool-")
		if err != nil {
			return err
		}
		os.Remove(f.Name())
		s.f = f
		if _, err := f.Write(s.mem); err != nil {
			return err
		}
		s.mem = nil
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	return err
}

func (s *spool) reader() io.ReaderAt {
	if s.f != nil {
		return s.f
	}
	return bytes.NewReader(s.mem)
}

func (s *spool) close() error {
	s.mem = nil
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// PutKey stores body under the prefix and key unless the key exists, with the
// same create-only put and retries as objects; created is false when it
// existed. For small sealed files beside the objects (manifest segments).
func (s *Store) PutKey(ctx context.Context, key string, body []byte) (created bool, err error) {
	created, err = s.upload(ctx, s.cfg.Prefix+key, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return false, fmt.Errorf("s3 store: put %s: %w", key, err)
	}
	return created, nil
}

// GetKey returns the bytes under the prefix and key, at most limit of them
// (more is an error); an absent key satisfies errors.Is(err, fs.ErrNotExist).
func (s *Store) GetKey(ctx context.Context, key string, limit int64) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: aws.String(s.cfg.Prefix + key)})
	if err != nil {
		return nil, fmt.Errorf("s3 store: get %s: %w", key, notExist(err))
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("s3 store: get %s: %w", key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("s3 store: get %s: larger than %d bytes", key, limit)
	}
	return data, nil
}

// ListKeys calls fn for every key under the prefix and keyPrefix, in key
// order, with the store's prefix removed.
func (s *Store) ListKeys(ctx context.Context, keyPrefix string, fn func(key string) error) error {
	return s.list(ctx, keyPrefix, func(o listed) error { return fn(o.rel) })
}
