package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/requestid"
)

// lines decodes the JSON lines in b, without their time.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		delete(m, "time")
		out = append(out, m)
	}
	return out
}

func TestJSONLoggerWritesRequestID(t *testing.T) {
	ctx := requestid.With(context.Background(), "rid-42")
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want []map[string]any
	}{
		{
			"with the request's context",
			func(l *slog.Logger) { l.InfoContext(ctx, "hello", "n", 1) },
			[]map[string]any{{"level": "INFO", "msg": "hello", "n": float64(1), "request_id": "rid-42"}},
		},
		{
			"without a request id",
			func(l *slog.Logger) { l.InfoContext(context.Background(), "hello") },
			[]map[string]any{{"level": "INFO", "msg": "hello"}},
		},
		{
			"through With",
			func(l *slog.Logger) { l.With("svc", "users").WarnContext(ctx, "w") },
			[]map[string]any{{"level": "WARN", "msg": "w", "svc": "users", "request_id": "rid-42"}},
		},
		{
			"below the level",
			func(l *slog.Logger) { l.DebugContext(ctx, "quiet") },
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(logging.New(&buf, "json", "info"))
			if diff := cmp.Diff(tt.want, lines(t, &buf), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("log lines mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTextLoggerWritesRequestID(t *testing.T) {
	var buf bytes.Buffer
	logging.New(&buf, "text", "").InfoContext(requestid.With(context.Background(), "rid-7"), "hi")
	if got := buf.String(); !strings.Contains(got, "request_id=rid-7") || !strings.Contains(got, "msg=hi") {
		t.Errorf("text line = %q, want msg=hi and request_id=rid-7", got)
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"DEBUG", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"warning", slog.LevelWarn},
		{"error", slog.LevelError},
		{"", slog.LevelInfo},
		{"verbose", slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := logging.ParseLevel(tt.in); got != tt.want {
				t.Errorf("ParseLevel(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDiscard(t *testing.T) {
	l := logging.Discard()
	if l.Enabled(context.Background(), slog.LevelError) {
		t.Errorf("Discard logger is enabled")
	}
	l.Error("nothing") // must not panic
}
