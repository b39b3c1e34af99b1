package main

import (
	"strings"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/broker"
	"github.com/microshop/microshop/internal/platform/broker/brokertest"
)

// TestTraceContext checks that one W3C trace id ties a checkout together: the
// client's traceparent travels through the gateway into orders, into the
// orders.placed event, into products' stock.reserved answer and into the
// orders.confirmed that follows.
func TestTraceContext(t *testing.T) {
	s := startSystem(t)
	api := s.URL + "/api/v1"
	_, tok := register(t, s.URL, "Tracy", "tracy@example.com")
	var catalog apiPage[apiProduct]
	expect(t, 200, call(t, "GET", api+"/products?limit=1", nil)).json(t, &catalog)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	var order apiOrder
	expect(t, 202, call(t, "POST", api+"/orders", map[string]any{"lines": []map[string]any{{"product_id": catalog.Items[0].ID, "quantity": 1}}},
		append(bearer(tok), "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")...)).json(t, &order)
	if o := awaitFinal(t, api, order.ID, bearer(tok)); o.Status != "confirmed" {
		t.Fatalf("order %s, want confirmed", o.Status)
	}

	line := s.Stdout.String()
	i := strings.Index(line, "nats nats://")
	if i < 0 {
		t.Fatalf("no NATS URL in %q", line)
	}
	_, js := brokertest.Connect(t, strings.TrimRight(strings.Fields(line[i+len("nats "):])[0], ";,)"))
	want := map[string]bool{"orders.placed": false, "stock.reserved": false, "orders.confirmed": false}
	eventually(t, 10*time.Second, "the order's events in the streams", func() bool {
		for _, stream := range []string{broker.StreamOrders, broker.StreamStock} {
			for _, m := range brokertest.Messages(t, js, stream) {
				if m.Header.Get("ce-subject") != order.ID {
					continue
				}
				typ, tp := m.Header.Get("ce-type"), m.Header.Get("traceparent")
				if _, ok := want[typ]; ok {
					if !strings.HasPrefix(tp, "00-"+traceID+"-") {
						t.Fatalf("%s carries traceparent %q, want trace %s", typ, tp, traceID)
					}
					want[typ] = true
				}
			}
		}
		for _, seen := range want {
			if !seen {
				return false
			}
		}
		return true
	})
}
