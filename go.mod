module github.com/every-channel/ec-node

go 1.26.0

// Why each direct dependency is here:
//   quic-go, httpsfv: pkg/moq/h3wt, our WebTransport client. No webtransport-go
//     release handshakes with moq-relay as a client (docs/moq.md), so the client opens
//     the session itself over quic-go's http3 (raw client connection, extended
//     CONNECT, the WebTransport SETTINGS moq-relay checks); httpsfv encodes the
//     WT-Available-Protocols structured field.
//   webtransport-go v0.10.0: the server side of pkg/moq/moqtest, the in-repo stand-in
//     relay for unit tests: an independent WebTransport implementation to test against.
//   zeebo/blake3: object ids (fastest Go BLAKE3 on 1 KiB-1 MiB inputs here, see
//     docs/cas-layout.md). urfave/cli/v2: command lines. x/sys: renameat2, flock.
//   Eyevinn/mp4ff v0.47.0: MP4 boxes for pkg/export (init segments merged into one
//     moov; moof track id, sequence and tfdt rewritten). A maintained, widely used
//     ISO-BMFF library with exact encode of what it decodes, so export does not
//     hand-write box parsing for the dozens of boxes an init segment carries.
//   chromedp v0.23.0 (e2e tests only): drives headless Chromium to play archive-serve's
//     page; the maintained Go DevTools-protocol client, so the test needs no node/npm.
//   No m3u8 library: pkg/serve writes its playlists itself. grafov/m3u8 v0.12.1 has no
//     EXT-X-GAP and keeps a media playlist's segments in a fixed-capacity ring, awkward
//     for EVENT playlists of unknown length; the few tags archive-serve writes take
//     ~40 lines (docs/serve.md).
//   prometheus/client_golang v1.25.0: pkg/metrics, --metrics-listen. The reference
//     implementation of the exposition format Prometheus scrapes, with the Go runtime
//     and process collectors; the newest release the module proxy serves here, and
//     it needs no newer Go than this module. (It raised x/net, x/crypto, x/text.)
//     client_model and common (the versions client_golang requires): the text
//     parser that reads back the metrics files of systemd-mode workers.
//   aws-sdk-go-v2 (service/s3, config) v1.114.10 / v1.33.18: pkg/s3cas, the CAS in an
//     S3-compatible bucket. Chosen over minio-go/v7 because: PutObjectInput and
//     CompleteMultipartUploadInput carry IfNoneMatch as typed fields (create-only puts,
//     412 = dedup hit) where minio-go needs a hand-set header; config.LoadDefaultConfig is
//     the reference AWS credential chain (env, shared files, SSO, web identity, IMDS) that
//     operators expect, and its standard retryer gives jittered backoff on transient
//     errors. Its weight is a dozen small aws/* modules plus smithy-go, all from one
//     maintainer, no third-party code; minio-go brings klauspost/compress, goccy/go-json,
//     go-ini, rs/xid, md5-simd and more.
require (
	github.com/Eyevinn/mp4ff v0.47.0
	github.com/dunglas/httpsfv v1.1.0
	github.com/prometheus/client_golang v1.25.0
	github.com/prometheus/client_model v0.6.3
	github.com/prometheus/common v0.72.0
	github.com/quic-go/qpack v0.6.0 // indirect
	github.com/quic-go/quic-go v0.59.0
	github.com/quic-go/webtransport-go v0.10.0
	github.com/urfave/cli/v2 v2.27.7
	github.com/zeebo/blake3 v0.2.4
	golang.org/x/sys v0.50.0
)

require github.com/chromedp/chromedp v0.23.0

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/aws/aws-sdk-go-v2/config v1.33.18
	github.com/aws/aws-sdk-go-v2/service/s3 v1.114.10
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/chromedp/cdproto v0.159.0 // indirect
)

require (
	github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream v1.7.27 // indirect
	github.com/aws/aws-sdk-go-v2/credentials v1.21.0 // indirect
	github.com/aws/aws-sdk-go-v2/feature/ec2/imds v1.20.9 // indirect
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.8.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/v4a v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/accept-encoding v1.13.25 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/checksum v1.11.13 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/presigned-url v1.14.12 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/s3shared v1.20.12 // indirect
	github.com/aws/aws-sdk-go-v2/service/signin v1.13.1 // indirect
	github.com/aws/aws-sdk-go-v2/service/sso v1.39.5 // indirect
	github.com/aws/aws-sdk-go-v2/service/ssooidc v1.44.5 // indirect
	github.com/aws/aws-sdk-go-v2/service/sts v1.52.0 // indirect
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/kylelemons/godebug v1.1.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
