// Package problemtest holds test helpers that check HTTP answers carrying
// RFC 9457 problem details (see package problem).
package problemtest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/microshop/microshop/internal/platform/problem"
)

// Decode checks that an answer with the given status, header and body is a
// problem: its Content-Type is problem.ContentType and its body decodes to a
// problem whose status is the answer's. It returns the decoded problem. A
// wrong Content-Type or status is reported with t.Errorf; a body that does not
// decode stops the test.
func Decode(t testing.TB, status int, header http.Header, body []byte) problem.Problem {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q (body %s)", ct, problem.ContentType, body)
	}
	var p problem.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body is not a problem: %v: %s", err, body)
	}
	if p.Status != status {
		t.Errorf("problem status %d != response status %d (body %s)", p.Status, status, body)
	}
	return p
}

// Check stops the test unless status is wantStatus. When wantStatus is an
// error (4xx or 5xx), it also checks, as Decode does, that the answer is a
// problem with that status and, when wantType is not empty, that its type is
// wantType.
func Check(t testing.TB, status int, header http.Header, body []byte, wantStatus int, wantType string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status = %d, want %d; body %s", status, wantStatus, body)
	}
	if wantStatus < 400 {
		return
	}
	p := Decode(t, status, header, body)
	if wantType != "" && p.Type != wantType {
		t.Errorf("problem type = %q, want %q; body %s", p.Type, wantType, body)
	}
}
