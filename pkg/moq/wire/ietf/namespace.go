package ietf

import (
	"fmt"
	"strings"

	"github.com/every-channel/ec-node/pkg/moq/wire"
)

// SubscribeNamespace is SUBSCRIBE_NAMESPACE: a request for the namespaces
// under Prefix, answered by SUBSCRIBE_NAMESPACE_OK (the request id only) or
// SUBSCRIBE_NAMESPACE_ERROR, then by PUBLISH_NAMESPACE and
// PUBLISH_NAMESPACE_DONE as they come and go.
type SubscribeNamespace struct {
	RequestID uint64
	Prefix    []string
}

// Append appends the message.
func (m SubscribeNamespace) Append(b []byte) ([]byte, error) {
	var e encoder
	e.varint(m.RequestID)
	e.tuple(m.Prefix)
	e.varint(0) // no parameters
	return e.message(b, TypeSubscribeNamespace, "subscribe namespace")
}

// ParseSubscribeNamespace decodes a SUBSCRIBE_NAMESPACE (parameters skipped).
func ParseSubscribeNamespace(msg Message) (SubscribeNamespace, error) {
	d := wire.NewDecoder(msg.Body)
	m := SubscribeNamespace{RequestID: d.Varint(), Prefix: readNamespace(d)}
	readParams(d)
	return m, d.Finish("subscribe namespace")
}

// PublishNamespace is PUBLISH_NAMESPACE: the relay has the broadcast
// Namespace. It is a request: we answer PUBLISH_NAMESPACE_OK.
type PublishNamespace struct {
	RequestID uint64
	Namespace []string
}

// Append appends the message (for tests and fake relays).
func (m PublishNamespace) Append(b []byte) ([]byte, error) {
	var e encoder
	e.varint(m.RequestID)
	e.tuple(m.Namespace)
	e.varint(0)
	return e.message(b, TypePublishNamespace, "publish namespace")
}

// ParsePublishNamespace decodes a PUBLISH_NAMESPACE (parameters skipped).
func ParsePublishNamespace(msg Message) (PublishNamespace, error) {
	d := wire.NewDecoder(msg.Body)
	m := PublishNamespace{RequestID: d.Varint(), Namespace: readNamespace(d)}
	readParams(d)
	return m, d.Finish("publish namespace")
}

// AppendPublishNamespaceDone appends PUBLISH_NAMESPACE_DONE, which in draft-14
// names the namespace, not the request (for tests and fake relays).
func AppendPublishNamespaceDone(b []byte, namespace []string) ([]byte, error) {
	var e encoder
	e.tuple(namespace)
	return e.message(b, TypePublishNamespaceDone, "publish namespace done")
}

// ParsePublishNamespaceDone decodes a PUBLISH_NAMESPACE_DONE.
func ParsePublishNamespaceDone(msg Message) ([]string, error) {
	d := wire.NewDecoder(msg.Body)
	ns := readNamespace(d)
	return ns, d.Finish("publish namespace done")
}

// AppendRequestID appends a message of type typ whose only field is a
// request id: in draft-14 UNSUBSCRIBE, UNSUBSCRIBE_NAMESPACE,
// PUBLISH_NAMESPACE_OK, SUBSCRIBE_NAMESPACE_OK and MAX_REQUEST_ID.
func AppendRequestID(b []byte, typ, requestID uint64) ([]byte, error) {
	var e encoder
	e.varint(requestID)
	return e.message(b, typ, "request id")
}

func (e *encoder) tuple(parts []string) {
	if e.err == nil && len(parts) > MaxNamespaceParts {
		e.err = fmt.Errorf("namespace of %d fields: %w", len(parts), wire.ErrTooLarge)
	}
	e.varint(uint64(len(parts)))
	for _, p := range parts {
		e.bytes(p)
	}
}

// Path maps a namespace tuple back to a broadcast path. A field that is empty
// or holds '/' or '\' has no plain path (moq-relay would escape it), so such a
// namespace is refused.
func Path(namespace []string) (string, error) {
	for _, p := range namespace {
		if p == "" || strings.ContainsAny(p, `/\`) {
			return "", fmt.Errorf("namespace field %q has no broadcast path: %w", p, wire.ErrInvalid)
		}
	}
	return strings.Join(namespace, "/"), nil
}
