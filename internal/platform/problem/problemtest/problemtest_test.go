package problemtest_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/microshop/microshop/internal/platform/problem"
	"github.com/microshop/microshop/internal/platform/problem/problemtest"
)

// recorder is a testing.TB that records failures instead of reporting them.
type recorder struct {
	testing.TB
	errors int
	fatal  bool
	msgs   []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors++
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
	panic(r) // stop the helper as t.Fatalf would; recovered by check
}

// check runs Check against a recorder and returns it.
func check(t *testing.T, status int, ct, body string, wantStatus int, wantType string) (r *recorder) {
	r = &recorder{TB: t}
	defer func() {
		if v := recover(); v != nil && v != r {
			panic(v)
		}
	}()
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	problemtest.Check(r, status, h, []byte(body), wantStatus, wantType)
	return r
}

func TestCheck(t *testing.T) {
	const nf = `{"type":"/problems/not-found","title":"Not found","status":404}`
	tests := []struct {
		name       string
		status     int
		ct, body   string
		wantStatus int
		wantType   string
		wantErrors int
		wantFatal  bool
	}{
		{"success", 200, "application/json", `{}`, 200, "", 0, false},
		{"success with unexpected status", 201, "application/json", `{}`, 200, "", 0, true},
		{"problem", 404, problem.ContentType, nf, 404, "/problems/not-found", 0, false},
		{"problem, type not checked", 404, problem.ContentType, nf, 404, "", 0, false},
		{"wrong status", 400, problem.ContentType, nf, 404, "", 0, true},
		{"wrong type", 404, problem.ContentType, nf, 404, "/problems/other", 1, false},
		{"wrong content type", 404, "application/json", nf, 404, "", 1, false},
		{"missing content type", 404, "", nf, 404, "", 1, false},
		{"body status differs", 404, problem.ContentType, `{"type":"/problems/not-found","status":400}`, 404, "", 1, false},
		{"body is not json", 404, problem.ContentType, `not found`, 404, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := check(t, tt.status, tt.ct, tt.body, tt.wantStatus, tt.wantType)
			if r.errors != tt.wantErrors || r.fatal != tt.wantFatal {
				t.Errorf("errors = %d, fatal = %v; want %d, %v; messages %q", r.errors, r.fatal, tt.wantErrors, tt.wantFatal, r.msgs)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	h := http.Header{"Content-Type": {problem.ContentType}}
	p := problemtest.Decode(t, 503, h, []byte(`{"type":"/problems/unavailable","title":"Service unavailable","status":503,"detail":"try later"}`))
	if p.Type != "/problems/unavailable" || p.Status != 503 || p.Detail != "try later" {
		t.Errorf("Decode = %+v", p)
	}
}
