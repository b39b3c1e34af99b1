// Package traceparent carries a W3C Trace Context (the traceparent header,
// https://www.w3.org/TR/trace-context/) through a request: across HTTP calls,
// into the events a request causes (the CloudEvents traceparent attribute)
// and into the work a consumer does for them, so one trace id ties a checkout
// together from the POST to the last event. Logs carry the trace id.
package traceparent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Header is the HTTP header (and event attribute) name.
const Header = "traceparent"

type key struct{}

// With returns a context carrying tp.
func With(ctx context.Context, tp string) context.Context {
	return context.WithValue(ctx, key{}, tp)
}

// From returns the traceparent in ctx, or "".
func From(ctx context.Context) string {
	tp, _ := ctx.Value(key{}).(string)
	return tp
}

// TraceID returns the trace id of the traceparent in ctx, or "".
func TraceID(ctx context.Context) string {
	tp := From(ctx)
	if len(tp) < 35 {
		return ""
	}
	return tp[3:35]
}

// Valid reports whether tp is a version-00 traceparent with non-zero ids.
func Valid(tp string) bool {
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	traceID, spanID, flags := tp[3:35], tp[36:52], tp[53:]
	return isHex(traceID) && isHex(spanID) && isHex(flags) &&
		strings.Trim(traceID, "0") != "" && strings.Trim(spanID, "0") != ""
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Continue returns the traceparent for work done on behalf of parent: the same
// trace with a new span id, or a new trace when parent is not valid.
func Continue(parent string) string {
	var span [8]byte
	rand.Read(span[:])
	if Valid(parent) {
		return parent[:36] + hex.EncodeToString(span[:]) + parent[52:]
	}
	var trace [16]byte
	rand.Read(trace[:])
	return "00-" + hex.EncodeToString(trace[:]) + "-" + hex.EncodeToString(span[:]) + "-01"
}
