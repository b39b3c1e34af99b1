package tcpfault_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/microshop/microshop/internal/platform/tcpfault"
)

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pong")
	}))
	defer backend.Close()
	p, err := tcpfault.Listen(backend.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	get := func(timeout time.Duration) (string, error) {
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + p.Addr() + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	tests := []struct {
		name    string
		latency time.Duration
		refuse  bool
		timeout time.Duration
		wantErr bool
	}{
		{"forwards", 0, false, 5 * time.Second, false},
		{"latency beyond the client's timeout", 3 * time.Second, false, 200 * time.Millisecond, true},
		{"refuses", 0, true, 5 * time.Second, true},
		{"forwards again", 0, false, 5 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.SetLatency(tt.latency)
			p.SetRefuse(tt.refuse)
			got, err := get(tt.timeout)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != "pong" {
				t.Errorf("body = %q, want pong", got)
			}
		})
	}
}
