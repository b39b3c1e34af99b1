package ordershttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/microshop/microshop/internal/orders"
	"github.com/microshop/microshop/internal/platform/auth"
	"github.com/microshop/microshop/internal/platform/problem"
)

// KeepAlive is how often an event stream sends a comment, so that proxies
// and clients do not take it for dead.
const KeepAlive = 15 * time.Second

// keepAliveEvery is KeepAlive; tests shorten it.
var keepAliveEvery = KeepAlive

// events streams the status of an order to its owner or an admin as
// Server-Sent Events: a "status" event with the order at once, then one per
// change of status, until a final status has been sent or the client leaves.
// Each event's id is the status, so a client that reconnects (EventSource does,
// after the stream ends) with a final status as Last-Event-ID gets 204, which
// tells it to stop.
func (h *handlers) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := auth.RequireUser(ctx)
	if err != nil {
		refuse(w, r, err)
		return
	}
	changes, err := h.svc.Watch(ctx, r.PathValue("id"), viewer(p))
	if err != nil {
		pb := problem.From(err)
		if pb.Status >= http.StatusInternalServerError {
			h.log.ErrorContext(ctx, "request failed", "status", pb.Status, "type", pb.Type, "err", pb.Cause())
		}
		problem.Write(w, r, pb)
		return
	}
	first, ok := <-changes
	if !ok { // the request ended already
		return
	}
	if orders.Final(first.Status) && r.Header.Get("Last-Event-ID") == first.Status {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc := http.NewResponseController(w)
	// A stream outlives any write timeout of the server.
	_ = rc.SetWriteDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // proxies must not buffer it
	w.WriteHeader(http.StatusOK)
	send := func(o orders.Order) bool {
		data, err := json.Marshal(o)
		if err != nil {
			h.log.ErrorContext(ctx, "event stream: encode order", "err", err)
			return false
		}
		if _, err := fmt.Fprintf(w, "event: status\nid: %s\ndata: %s\n\n", o.Status, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(first) {
		return
	}
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	for {
		select {
		case o, ok := <-changes:
			if !ok || !send(o) {
				return
			}
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
