package ordershttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/events"
	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/orders/ordershttp"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
	"github.com/microshop/microshop/internal/platform/server"
)

// sseEvent is one Server-Sent Event, or a comment (when comment is set).
type sseEvent struct {
	event, id, data, comment string
}

// stream is an open event stream.
type stream struct {
	resp   *http.Response
	events chan sseEvent // closed at the end of the stream
}

// openStream requests url as an event stream with header, and reads its
// events in the background.
func openStream(t *testing.T, url string, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &stream{resp: resp, events: make(chan sseEvent, 100)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e != (sseEvent{}) {
					s.events <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, ":"):
				e.comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "event":
					e.event = v
				case "id":
					e.id = v
				case "data":
					e.data += v
				}
			}
		}
	}()
	return s
}

// next returns the next event that is not a comment; ok is false at the end
// of the stream.
func (s *stream) next(t *testing.T) (e sseEvent, o orders.Order, ok bool) {
	t.Helper()
	for {
		select {
		case e, ok = <-s.events:
			if !ok {
				return e, o, false
			}
			if e.comment != "" {
				continue
			}
			if err := json.Unmarshal([]byte(e.data), &o); err != nil {
				t.Fatalf("event data %q: %v", e.data, err)
			}
			return e, o, true
		case <-time.After(5 * time.Second):
			t.Fatal("no event came")
		}
	}
}

func (s *stream) want(t *testing.T, id, status string) {
	t.Helper()
	e, o, ok := s.next(t)
	if !ok || e.event != "status" || e.id != status || o.ID != id || o.Status != status {
		t.Fatalf("event = %+v (open %v), order %s %s; want a status event of %s %s", e, ok, o.ID, o.Status, id, status)
	}
}

func (s *stream) wantEnd(t *testing.T) {
	t.Helper()
	if e, _, ok := s.next(t); ok {
		t.Fatalf("event = %+v, want the end of the stream", e)
	}
}

func TestOrderEvents(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	o := s.placeAs(t, s.ada.ID)
	url := srv.URL + "/api/v1/orders/" + o.ID + "/events"

	st := openStream(t, url, s.asAda(t))
	if st.resp.StatusCode != http.StatusOK || st.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q; want 200 text/event-stream", st.resp.StatusCode, st.resp.Header.Get("Content-Type"))
	}
	st.want(t, o.ID, orders.StatusPending)
	// An admin follows it too.
	admin := openStream(t, url, s.asAdmin(t))
	admin.want(t, o.ID, orders.StatusPending)

	// The consumer confirms the order: both streams hear of it.
	s.stock(t, events.StockReserved, o.ID)
	st.want(t, o.ID, orders.StatusConfirmed)
	admin.want(t, o.ID, orders.StatusConfirmed)

	if _, err := s.orders.Cancel(context.Background(), o.ID, orders.Viewer{UserID: s.ada.ID}); err != nil {
		t.Fatal(err)
	}
	st.want(t, o.ID, orders.StatusCancelled)
	st.wantEnd(t)
	admin.want(t, o.ID, orders.StatusCancelled)
	admin.wantEnd(t)

	// A finished order: its one event, then the end.
	again := openStream(t, url, s.asAda(t))
	again.want(t, o.ID, orders.StatusCancelled)
	again.wantEnd(t)
	// A reconnection after the final event is told to stop.
	h := s.asAda(t)
	h.Set("Last-Event-ID", orders.StatusCancelled)
	if r := openStream(t, url, h); r.resp.StatusCode != http.StatusNoContent {
		t.Errorf("reconnection after the end: status %d, want 204", r.resp.StatusCode)
	}
}

func TestOrderEventsRefused(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	o := s.placeAs(t, s.ada.ID)
	tests := []struct {
		name   string
		url    string
		header http.Header
		want   int
	}{
		{"another customer", srv.URL + "/api/v1/orders/" + o.ID + "/events", s.asBob(t), 404},
		{"anonymous", srv.URL + "/api/v1/orders/" + o.ID + "/events", http.Header{}, 401},
		{"unknown order", srv.URL + "/api/v1/orders/" + unknownID + "/events", s.asAda(t), 404},
		{"malformed id", srv.URL + "/api/v1/orders/nope/events", s.asAda(t), 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := call(t, http.MethodGet, tt.url, tt.header, "", "")
			problemtest.Check(t, resp.StatusCode, resp.Header, b, tt.want, "")
		})
	}
}

func TestOrderEventsKeepAlive(t *testing.T) {
	ordershttp.SetKeepAlive(t, 20*time.Millisecond)
	s := newShop(t)
	srv := s.server(t)
	o := s.placeAs(t, s.ada.ID)
	st := openStream(t, srv.URL+"/api/v1/orders/"+o.ID+"/events", s.asAda(t))
	st.want(t, o.ID, orders.StatusPending)
	for range 2 {
		select {
		case e := <-st.events:
			if e.comment != "keep-alive" {
				t.Fatalf("event = %+v, want a keep-alive comment", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no keep-alive came")
		}
	}
}

func TestCancelOrder(t *testing.T) {
	s := newShop(t)
	srv := s.server(t)
	cancel := func(id string, h http.Header) (*http.Response, []byte) {
		return call(t, http.MethodPost, srv.URL+"/api/v1/orders/"+id+"/cancel", h, "", "")
	}
	ada := s.placeAs(t, s.ada.ID)
	resp, b := cancel(ada.ID, s.asBob(t))
	problemtest.Check(t, resp.StatusCode, resp.Header, b, http.StatusNotFound, "/problems/not-found")
	resp, b = cancel(ada.ID, s.asAda(t))
	if got := decodeOrder(t, b); resp.StatusCode != http.StatusOK || got.ID != ada.ID || got.Status != orders.StatusCancelled || got.Reason != orders.CancelledReason {
		t.Fatalf("cancel by the owner = %d %s", resp.StatusCode, b)
	}
	resp, b = cancel(ada.ID, s.asAda(t))
	problemtest.Check(t, resp.StatusCode, resp.Header, b, http.StatusConflict, "/problems/"+orders.CodeIllegalTransition)

	confirmed := s.placeAs(t, s.ada.ID)
	s.stock(t, events.StockReserved, confirmed.ID)
	resp, b = cancel(confirmed.ID, s.asAdmin(t))
	if got := decodeOrder(t, b); resp.StatusCode != http.StatusOK || got.Status != orders.StatusCancelled || got.Reason != orders.AdminCancelledReason {
		t.Fatalf("cancel of a confirmed order by an admin = %d %s", resp.StatusCode, b)
	}
	rejected := s.placeAs(t, s.ada.ID)
	s.stock(t, events.StockRejected, rejected.ID)
	resp, b = cancel(rejected.ID, s.asAda(t))
	problemtest.Check(t, resp.StatusCode, resp.Header, b, http.StatusConflict, "/problems/"+orders.CodeIllegalTransition)
}

// TestDescribe checks the OpenAPI document of the orders routes, the event
// stream included.
func TestDescribe(t *testing.T) {
	api := huma.NewAPI(server.Config("test"), nopAdapter{})
	ordershttp.Describe(api)
	doc := api.OpenAPI()
	place := doc.Paths["/api/v1/orders"].Post
	if place == nil || place.Responses["202"] == nil {
		t.Errorf("place-order does not document 202")
	}
	if op := doc.Paths["/api/v1/orders/{id}/cancel"].Post; op == nil || op.OperationID != "cancel-order" {
		t.Errorf("cancel-order is not documented")
	}
	watch := doc.Paths[ordershttp.EventsPath]
	if watch == nil || watch.Get == nil || watch.Get.Responses["200"] == nil || watch.Get.Responses["200"].Content["text/event-stream"] == nil {
		t.Fatalf("the event stream is not documented as text/event-stream")
	}
}

// nopAdapter lets huma collect operations without serving them.
type nopAdapter struct{}

func (nopAdapter) Handle(*huma.Operation, func(huma.Context))   {}
func (nopAdapter) ServeHTTP(http.ResponseWriter, *http.Request) {}
