package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Limits of the envelope.
const (
	// MaxDataSize is the largest event body accepted, 1 MiB. Events should be
	// far smaller: they name what happened, they do not carry documents.
	MaxDataSize = 1 << 20
	// maxIDLen, maxAttrLen bound the attributes, which travel in headers.
	maxIDLen   = 128
	maxAttrLen = 256
)

// The wire format: CloudEvents 1.0, NATS protocol binding, binary content mode.
// Attributes travel as headers, the body is the event data.
const (
	SpecVersion = "1.0"
	ContentType = "application/json"

	HeaderID                = "ce-id"
	HeaderSource            = "ce-source"
	HeaderType              = "ce-type"
	HeaderSubject           = "ce-subject"
	HeaderTime              = "ce-time"
	HeaderSpecVersion       = "ce-specversion"
	HeaderDataSchemaVersion = "ce-dataschemaversion" // extension attribute
	HeaderTraceParent       = "traceparent"          // W3C trace context
	HeaderContentType       = "content-type"
	// HeaderMsgID is JetStream's deduplication header; it carries the event id.
	HeaderMsgID = jetstream.MsgIDHeader
)

// DefaultSchemaVersion is the data schema version of new events.
const DefaultSchemaVersion = "1"

// Event is one fact that happened in a service, with the CloudEvents 1.0
// attributes microshop uses.
type Event struct {
	// ID is unique per event (a UUIDv7): the deduplication key of JetStream
	// and of every consumer's inbox.
	ID string
	// Source names the producing service, e.g. "microshop/orders".
	Source string
	// Type is what happened, e.g. "orders.placed"; it is also the NATS subject.
	Type string
	// Subject is the id of the aggregate the event is about, e.g. the order id.
	Subject string
	// Time is when it happened.
	Time time.Time
	// DataSchemaVersion is the major version of Data's schema, "1", "2", ...
	DataSchemaVersion string
	// TraceParent is the W3C traceparent of the operation that caused the
	// event, or empty.
	TraceParent string
	// Data is the payload, a JSON object.
	Data json.RawMessage
}

// NewEvent returns an event with a new UUIDv7 id, the current time and schema
// version 1, whose data is data marshalled to JSON (it must be an object).
func NewEvent(source, typ, subject string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("broker: marshal %s data: %w", typ, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("broker: event id: %w", err)
	}
	e := Event{
		ID:                id.String(),
		Source:            source,
		Type:              typ,
		Subject:           subject,
		Time:              time.Now().UTC(),
		DataSchemaVersion: DefaultSchemaVersion,
		Data:              raw,
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// Validate reports the first attribute of e that is missing or malformed.
func (e Event) Validate() error {
	if err := checkToken("id", e.ID, maxIDLen); err != nil {
		return err
	}
	if err := checkToken("source", e.Source, maxAttrLen); err != nil {
		return err
	}
	if err := checkType(e.Type); err != nil {
		return err
	}
	if err := checkText("subject", e.Subject); err != nil {
		return err
	}
	if e.Time.IsZero() {
		return errors.New("broker: event time is missing")
	}
	if err := checkSchemaVersion(e.DataSchemaVersion); err != nil {
		return err
	}
	if e.TraceParent != "" && !validTraceParent(e.TraceParent) {
		return fmt.Errorf("broker: invalid traceparent %q", e.TraceParent)
	}
	return checkData(e.Data)
}

// Encode returns the NATS message of e, in CloudEvents binary mode: the
// attributes as headers, the data as the body, the type as the subject and the
// id as Nats-Msg-Id. It does not validate e; see Validate.
func Encode(e Event) *nats.Msg {
	m := nats.NewMsg(e.Type)
	h := m.Header
	h.Set(HeaderSpecVersion, SpecVersion)
	h.Set(HeaderID, e.ID)
	h.Set(HeaderSource, e.Source)
	h.Set(HeaderType, e.Type)
	h.Set(HeaderSubject, e.Subject)
	h.Set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderDataSchemaVersion, e.DataSchemaVersion)
	if e.TraceParent != "" {
		h.Set(HeaderTraceParent, e.TraceParent)
	}
	h.Set(HeaderContentType, ContentType)
	h.Set(HeaderMsgID, e.ID)
	m.Data = e.Data
	return m
}

// Decode reads the event in a NATS message, checking every attribute. A
// traceparent that is not well formed is dropped (W3C trace context says to
// ignore it), anything else that is missing or malformed is an error.
func Decode(msg *nats.Msg) (Event, error) {
	if msg == nil {
		return Event{}, errors.New("broker: no message")
	}
	return decode(msg.Header, msg.Data)
}

// DecodeJetStream is Decode for a message delivered by a JetStream consumer.
func DecodeJetStream(msg jetstream.Msg) (Event, error) {
	if msg == nil {
		return Event{}, errors.New("broker: no message")
	}
	return decode(msg.Headers(), msg.Data())
}

func decode(h nats.Header, data []byte) (Event, error) {
	if len(data) > MaxDataSize {
		return Event{}, fmt.Errorf("broker: event data of %d bytes exceeds %d", len(data), MaxDataSize)
	}
	var e Event
	var err error
	get := func(key string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = header(h, key)
		return v
	}
	spec := get(HeaderSpecVersion)
	e.ID = get(HeaderID)
	e.Source = get(HeaderSource)
	e.Type = get(HeaderType)
	e.Subject = get(HeaderSubject)
	ts := get(HeaderTime)
	e.DataSchemaVersion = get(HeaderDataSchemaVersion)
	tp := get(HeaderTraceParent)
	ct := get(HeaderContentType)
	if err != nil {
		return Event{}, err
	}
	if spec != SpecVersion {
		return Event{}, fmt.Errorf("broker: unsupported %s %q", HeaderSpecVersion, spec)
	}
	if ts == "" {
		return Event{}, fmt.Errorf("broker: %s is missing", HeaderTime)
	}
	t, perr := time.Parse(time.RFC3339Nano, ts)
	if perr != nil {
		return Event{}, fmt.Errorf("broker: invalid %s %q", HeaderTime, ts)
	}
	e.Time = t.UTC()
	if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != ContentType {
		return Event{}, fmt.Errorf("broker: %s is %q, want %s", HeaderContentType, ct, ContentType)
	}
	if validTraceParent(tp) {
		e.TraceParent = tp
	}
	e.Data = bytes.Clone(data)
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// header returns the single value of key, matched exactly or, failing that,
// case-insensitively. Two values for one attribute are an error.
func header(h nats.Header, key string) (string, error) {
	vals, ok := h[key]
	if !ok {
		for k, v := range h {
			if strings.EqualFold(k, key) {
				if ok {
					return "", fmt.Errorf("broker: header %s given twice", key)
				}
				vals, ok = v, true
			}
		}
	}
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	}
	return "", fmt.Errorf("broker: header %s given %d times", key, len(vals))
}

// checkToken accepts 1..max printable ASCII characters without spaces.
func checkToken(name, v string, max int) error {
	if v == "" {
		return fmt.Errorf("broker: event %s is missing", name)
	}
	if len(v) > max {
		return fmt.Errorf("broker: event %s longer than %d bytes", name, max)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("broker: event %s %q has a character outside printable ASCII", name, v)
		}
	}
	return nil
}

// checkText accepts 1..maxAttrLen bytes of UTF-8 text without control
// characters (a header value cannot hold a line break).
func checkText(name, v string) error {
	if v == "" {
		return fmt.Errorf("broker: event %s is missing", name)
	}
	if len(v) > maxAttrLen {
		return fmt.Errorf("broker: event %s longer than %d bytes", name, maxAttrLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("broker: event %s is not valid UTF-8", name)
	}
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("broker: event %s %q has a control character", name, v)
		}
	}
	return nil
}

// checkType accepts a NATS subject of at least two tokens of lower-case
// letters, digits, '_' and '-': "orders.placed".
func checkType(v string) error {
	if err := checkToken("type", v, maxAttrLen); err != nil {
		return err
	}
	tokens := strings.Split(v, ".")
	if len(tokens) < 2 {
		return fmt.Errorf("broker: event type %q is not of the form <service>.<event>", v)
	}
	for _, tok := range tokens {
		if tok == "" {
			return fmt.Errorf("broker: event type %q has an empty token", v)
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return fmt.Errorf("broker: event type %q may hold only a-z, 0-9, '_', '-' and '.'", v)
			}
		}
	}
	return nil
}

// checkSchemaVersion accepts a positive decimal integer without leading zeros.
func checkSchemaVersion(v string) error {
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != v {
		return fmt.Errorf("broker: invalid data schema version %q", v)
	}
	return nil
}

func checkData(d json.RawMessage) error {
	if len(d) > MaxDataSize {
		return fmt.Errorf("broker: event data of %d bytes exceeds %d", len(d), MaxDataSize)
	}
	trimmed := bytes.TrimLeft(d, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(d) {
		return errors.New("broker: event data must be a JSON object")
	}
	return nil
}

// validTraceParent checks the W3C traceparent format:
// version-traceid-parentid-flags, lower-case hex, non-zero ids.
func validTraceParent(v string) bool {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return false
	}
	if !isHex(v[0:2]) || !isHex(v[3:35]) || !isHex(v[36:52]) || !isHex(v[53:55]) {
		return false
	}
	if v[0:2] == "ff" || v[3:35] == strings.Repeat("0", 32) || v[36:52] == strings.Repeat("0", 16) {
		return false
	}
	if v[0:2] == "00" {
		return len(v) == 55
	}
	return len(v) == 55 || v[55] == '-' // a later version may append fields
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
