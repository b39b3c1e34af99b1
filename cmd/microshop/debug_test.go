package main

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestDebugEndpoints starts a service with --debug-addr: the pprof profiles
// answer on that internal address and nowhere on the API port.
func TestDebugEndpoints(t *testing.T) {
	addr, debugAddr := mustFreeAddr(t), mustFreeAddr(t)
	startChild(t, io.Discard, nil, "serve", "users", "--addr", addr, "--debug-addr", debugAddr,
		"--data-dir", t.TempDir(), "--log-level", "warn")
	waitHealthy(t, "http://"+addr)
	get := func(url string) int {
		t.Helper()
		var code int
		eventually(t, 10*time.Second, url+" answers", func() bool {
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			code = resp.StatusCode
			return true
		})
		return code
	}
	tests := []struct {
		url  string
		want int
	}{
		{"http://" + debugAddr + "/debug/pprof/", 200},
		{"http://" + debugAddr + "/debug/pprof/goroutine?debug=1", 200},
		{"http://" + addr + "/debug/pprof/", 404},
		{"http://" + debugAddr + "/api/v1/users", 404},
	}
	for _, tt := range tests {
		if got := get(tt.url); got != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.url, got, tt.want)
		}
	}
}

func mustFreeAddr(t *testing.T) string {
	t.Helper()
	a, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
