package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/microshop/microshop/internal/platform/deadline"
	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/requestid"
)

// MaxBudget is the longest any request may run inside a service.
const MaxBudget = 10 * time.Second

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
		ctx, cancel := context.WithTimeout(requestid.With(r.Context(), id), deadline.Budget(r, MaxBudget))
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
