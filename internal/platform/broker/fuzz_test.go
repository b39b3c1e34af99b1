package broker_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/microshop/microshop/internal/platform/broker"
)

// FuzzDecode feeds the decoder arbitrary attributes and bodies: it must never
// panic, and whatever it accepts must survive an encode/decode round trip
// unchanged.
func FuzzDecode(f *testing.F) {
	m := broker.Encode(validEvent())
	h := m.Header
	f.Add(h.Get("ce-specversion"), h.Get("ce-id"), h.Get("ce-source"), h.Get("ce-type"), h.Get("ce-subject"),
		h.Get("ce-time"), h.Get("ce-dataschemaversion"), h.Get("traceparent"), h.Get("content-type"), m.Data)
	f.Add("1.0", "x", "s", "a.b", "o", "2026-01-02T03:04:05Z", "1", "", "application/json", []byte(`{}`))
	f.Add("1.0", "", "", "", "", "", "", "zz", "", []byte(`[`))
	f.Add("1.0", "x", "s", "a..b", "o\n", "2026-13-02T03:04:05Z", "01", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "application/json;", []byte(" {\"a\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, spec, id, source, typ, subject, ts, version, tp, ct string, data []byte) {
		msg := &nats.Msg{Subject: "orders.placed", Header: nats.Header{}, Data: data}
		for k, v := range map[string]string{
			"ce-specversion": spec, "ce-id": id, "ce-source": source, "ce-type": typ, "ce-subject": subject,
			"ce-time": ts, "ce-dataschemaversion": version, "traceparent": tp, "content-type": ct,
		} {
			if v != "" {
				msg.Header.Set(k, v)
			}
		}
		e, err := broker.Decode(msg)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Decode accepted an event that Validate rejects: %v", err)
		}
		again, err := broker.Decode(broker.Encode(e))
		if err != nil {
			t.Fatalf("re-decoding an accepted event: %v", err)
		}
		if diff := cmp.Diff(e, again); diff != "" {
			t.Fatalf("round trip changed the event (-first +second):\n%s", diff)
		}
	})
}
