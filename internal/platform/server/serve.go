package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve serves h on ln until ctx is done, then shuts down gracefully, giving
// in-flight requests up to 10 seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Check is one readiness probe; an error makes the service not ready.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Health adds GET /healthz (the process is alive) and GET /readyz (every check
// passes) to mux. info, when not nil, adds extra state to the readiness report,
// such as the circuit breakers of the service's upstreams.
func Health(mux *http.ServeMux, checks []Check, info func(ctx context.Context) map[string]any) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		report, ok := Readiness(r.Context(), checks, info)
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, report)
	})
}

// Readiness runs checks (each bounded to 2 seconds) and returns the report that
// /readyz serves and whether every check passed.
func Readiness(ctx context.Context, checks []Check, info func(ctx context.Context) map[string]any) (map[string]any, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	report := map[string]any{}
	if info != nil {
		for k, v := range info(ctx) {
			report[k] = v
		}
	}
	results := map[string]string{}
	ok := true
	for _, c := range checks {
		if err := c.Run(ctx); err != nil {
			results[c.Name] = "unavailable"
			ok = false
			continue
		}
		results[c.Name] = "ok"
	}
	report["status"] = map[bool]string{true: "ok", false: "unavailable"}[ok]
	report["checks"] = results
	return report, ok
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
