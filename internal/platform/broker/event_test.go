package broker_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/microshop/microshop/internal/platform/broker"
)

const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func validEvent() broker.Event {
	return broker.Event{
		ID:                "0190a3e2-7c4e-7b3c-9a3e-3f1f6a2b9c11",
		Source:            "microshop/orders",
		Type:              "orders.placed",
		Subject:           "order-42",
		Time:              time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		DataSchemaVersion: "1",
		TraceParent:       traceParent,
		Data:              json.RawMessage(`{"order_id":"order-42","lines":[{"qty":2}]}`),
	}
}

func TestNewEvent(t *testing.T) {
	before := time.Now()
	e, err := broker.NewEvent("microshop/orders", "orders.placed", "order-1", struct {
		OrderID string `json:"order_id"`
	}{"order-1"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(e.ID)
	if err != nil || id.Version() != 7 {
		t.Errorf("ID = %q (%v), want a UUIDv7", e.ID, err)
	}
	if e.Time.Before(before.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want now in UTC", e.Time)
	}
	want := broker.Event{ID: e.ID, Source: "microshop/orders", Type: "orders.placed", Subject: "order-1",
		Time: e.Time, DataSchemaVersion: "1", Data: json.RawMessage(`{"order_id":"order-1"}`)}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("NewEvent (-want +got):\n%s", diff)
	}
	other, _ := broker.NewEvent("microshop/orders", "orders.placed", "order-1", map[string]string{})
	if other.ID == e.ID {
		t.Errorf("two events share the id %s", e.ID)
	}
}

func TestNewEventRejects(t *testing.T) {
	tests := []struct {
		name                 string
		source, typ, subject string
		data                 any
	}{
		{"array data", "microshop/orders", "orders.placed", "o1", []int{1}},
		{"string data", "microshop/orders", "orders.placed", "o1", "x"},
		{"null data", "microshop/orders", "orders.placed", "o1", nil},
		{"unmarshalable data", "microshop/orders", "orders.placed", "o1", map[string]any{"c": make(chan int)}},
		{"no source", "", "orders.placed", "o1", map[string]int{}},
		{"no type", "microshop/orders", "", "o1", map[string]int{}},
		{"one-token type", "microshop/orders", "placed", "o1", map[string]int{}},
		{"wildcard type", "microshop/orders", "orders.*", "o1", map[string]int{}},
		{"upper-case type", "microshop/orders", "Orders.Placed", "o1", map[string]int{}},
		{"no subject", "microshop/orders", "orders.placed", "", map[string]int{}},
		{"subject with a line break", "microshop/orders", "orders.placed", "o1\r\nx: y", map[string]int{}},
		{"oversize data", "microshop/orders", "orders.placed", "o1", map[string]string{"x": strings.Repeat("a", broker.MaxDataSize)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := broker.NewEvent(tt.source, tt.typ, tt.subject, tt.data); err == nil {
				t.Errorf("NewEvent = %+v, want an error", e)
			}
		})
	}
}

func TestEncodeHeaders(t *testing.T) {
	e := validEvent()
	m := broker.Encode(e)
	if m.Subject != "orders.placed" {
		t.Errorf("Subject = %q, want the event type", m.Subject)
	}
	want := nats.Header{
		"ce-specversion":       {"1.0"},
		"ce-id":                {e.ID},
		"ce-source":            {"microshop/orders"},
		"ce-type":              {"orders.placed"},
		"ce-subject":           {"order-42"},
		"ce-time":              {"2026-01-02T03:04:05.123456789Z"},
		"ce-dataschemaversion": {"1"},
		"traceparent":          {traceParent},
		"content-type":         {"application/json"},
		"Nats-Msg-Id":          {e.ID},
	}
	if diff := cmp.Diff(want, m.Header); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if string(m.Data) != string(e.Data) {
		t.Errorf("body = %s, want the data %s", m.Data, e.Data)
	}
	e.TraceParent = ""
	if _, ok := broker.Encode(e).Header["traceparent"]; ok {
		t.Errorf("an event without trace context has a traceparent header")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	local := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		modify func(e *broker.Event)
	}{
		{"full", func(*broker.Event) {}},
		{"no trace context", func(e *broker.Event) { e.TraceParent = "" }},
		{"schema version 2", func(e *broker.Event) { e.DataSchemaVersion = "2" }},
		{"empty object", func(e *broker.Event) { e.Data = json.RawMessage(`{}`) }},
		{"unicode subject", func(e *broker.Event) { e.Subject = "commande-été" }},
		{"time in another zone comes back in UTC", func(e *broker.Event) { e.Time = e.Time.In(local) }},
		{"largest data", func(e *broker.Event) {
			e.Data = json.RawMessage(`{"x":"` + strings.Repeat("a", broker.MaxDataSize-8) + `"}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			tt.modify(&e)
			got, err := broker.Decode(broker.Encode(e))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := e
			want.Time = e.Time.UTC()
			// The body byte for byte (cmp would be slow on a megabyte), then the rest.
			if !bytes.Equal(want.Data, got.Data) {
				t.Errorf("data = %.80s..., want %.80s...", got.Data, want.Data)
			}
			want.Data, got.Data = nil, nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *nats.Msg)
		want   string // part of the error
	}{
		{"missing id", del("ce-id"), "id is missing"},
		{"missing type", del("ce-type"), "type is missing"},
		{"missing source", del("ce-source"), "source is missing"},
		{"missing subject", del("ce-subject"), "subject is missing"},
		{"missing time", del("ce-time"), "ce-time is missing"},
		{"missing spec version", del("ce-specversion"), "ce-specversion"},
		{"missing schema version", del("ce-dataschemaversion"), "schema version"},
		{"missing content type", del("content-type"), "content-type"},
		{"no headers at all", func(m *nats.Msg) { m.Header = nil }, "ce-specversion"},
		{"bad time", set("ce-time", "yesterday"), "invalid ce-time"},
		{"time without zone", set("ce-time", "2026-01-02T03:04:05"), "invalid ce-time"},
		{"spec version 0.3", set("ce-specversion", "0.3"), "unsupported"},
		{"schema version 0", set("ce-dataschemaversion", "0"), "schema version"},
		{"schema version v1", set("ce-dataschemaversion", "v1"), "schema version"},
		{"xml content", set("content-type", "application/xml"), "content-type"},
		{"type with wildcard", set("ce-type", "orders.>"), "type"},
		{"id with a space", set("ce-id", "a b"), "id"},
		{"id too long", set("ce-id", strings.Repeat("a", 129)), "id longer"},
		{"id twice", func(m *nats.Msg) { m.Header["ce-id"] = []string{"a", "b"} }, "given 2 times"},
		{"id in two spellings", func(m *nats.Msg) {
			m.Header["CE-ID"] = []string{"b"}
			m.Header["Ce-Id"] = []string{"c"}
			delete(m.Header, "ce-id")
		}, "twice"},
		{"array body", body(`[1,2]`), "JSON object"},
		{"string body", body(`"x"`), "JSON object"},
		{"empty body", body(``), "JSON object"},
		{"truncated object", body(`{"a":`), "JSON object"},
		{"object then garbage", body(`{"a":1} x`), "JSON object"},
		{"oversize body", body(`{"x":"` + strings.Repeat("a", broker.MaxDataSize) + `"}`), "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := broker.Encode(validEvent())
			tt.modify(m)
			e, err := broker.Decode(m)
			if err == nil {
				t.Fatalf("Decode = %+v, want an error containing %q", e, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := broker.Decode(nil); err == nil {
		t.Errorf("Decode(nil) = nil error")
	}
}

func TestDecodeLeniency(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *nats.Msg)
		check  func(e broker.Event) bool
	}{
		{"malformed traceparent is dropped", set("traceparent", "00-xyz"), func(e broker.Event) bool { return e.TraceParent == "" }},
		{"all-zero trace id is dropped", set("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), func(e broker.Event) bool { return e.TraceParent == "" }},
		{"header names in another case", func(m *nats.Msg) {
			m.Header["Ce-Id"] = m.Header["ce-id"]
			delete(m.Header, "ce-id")
		}, func(e broker.Event) bool { return e.ID == validEvent().ID }},
		{"content type with charset", set("content-type", "application/json; charset=utf-8"), func(broker.Event) bool { return true }},
		{"time with offset", set("ce-time", "2026-01-02T04:04:05+01:00"), func(e broker.Event) bool {
			return e.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) && e.Time.Location() == time.UTC
		}},
		{"body with surrounding space", body(" {\"a\":1}\n"), func(broker.Event) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := broker.Encode(validEvent())
			tt.modify(m)
			e, err := broker.Decode(m)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !tt.check(e) {
				t.Errorf("Decode = %+v", e)
			}
		})
	}
}

func del(key string) func(m *nats.Msg) { return func(m *nats.Msg) { m.Header.Del(key) } }

func set(key, v string) func(m *nats.Msg) { return func(m *nats.Msg) { m.Header.Set(key, v) } }

func body(b string) func(m *nats.Msg) { return func(m *nats.Msg) { m.Data = []byte(b) } }
