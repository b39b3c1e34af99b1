package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/microshop/microshop/internal/platform/deadline"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/requestid"
	"github.com/microshop/microshop/internal/platform/traceparent"
)

// MaxBudget is the longest any request may run inside a service.
const MaxBudget = 10 * time.Second

// MaxStream is the longest a Server-Sent Events stream stays open; the client
// reconnects after it (EventSource does so by itself).
const MaxStream = 10 * time.Minute

// isStream reports whether r asks for a Server-Sent Events stream, which lives
// longer than an ordinary request.
func isStream(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// Middleware wraps a service's handler with panic recovery, the request id, the
// caller's deadline and an access log line per request.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestid.Header)
		if !requestid.Valid(id) {
			id = requestid.New()
			r.Header.Set(requestid.Header, id)
		}
		w.Header().Set(requestid.Header, id)
		budget := deadline.Budget(r, MaxBudget)
		if isStream(r) {
			budget = MaxStream
			// The server's write timeout would cut the stream: lift it for this response.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		ctx := traceparent.With(requestid.With(r.Context(), id), traceparent.Continue(r.Header.Get(traceparent.Header)))
		ctx, cancel := context.WithTimeout(ctx, budget)
		defer cancel()
		r = r.WithContext(ctx)

		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(ctx, "panic", "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					problem.Write(sw, r, problem.New(http.StatusInternalServerError, "internal", "an internal error occurred"))
				}
			}
			log.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", sw.statusOrOK()), slog.Duration("duration", time.Since(start)))
		}()
		next.ServeHTTP(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) statusOrOK() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer (flushing for SSE).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// NotFound answers every unmatched path with a problem instead of the mux's text.
func NotFound(w http.ResponseWriter, r *http.Request) {
	problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no such resource"))
}
