package gateway

import (
	"net/http"

	"github.com/microshop/microshop/internal/platform/problem"
)

// problemTypes documents every problem type microshop returns. The gateway serves
// each at its type URI, so a client that meets an unknown type can look it up.
var problemTypes = map[string]string{
	"invalid-request":        "The request is malformed or breaks a rule on its own; see detail and errors. Fix the request; retrying it unchanged fails again.",
	"validation-failed":      "The request body or parameters do not match the schema (unknown field, wrong type, value out of range); errors lists each location.",
	"not-found":              "The resource does not exist, or you may not know that it does.",
	"method-not-allowed":     "The resource exists but does not accept this method.",
	"conflict":               "The request clashes with the current state of the resource.",
	"email-taken":            "Another user already has this email address.",
	"sku-taken":              "Another product already has this SKU.",
	"unprocessable":          "The request is well-formed but refers to things that do not fit together.",
	"unknown-user":           "The order names a user that does not exist.",
	"unknown-product":        "The order names a product that does not exist.",
	"idempotency-key-reused": "This Idempotency-Key was already used with a different request body.",
	"idempotency-key-exists": "Another request with this Idempotency-Key was stored at the same moment; retry the same request to get its result.",
	"request-in-progress":    "A request with this Idempotency-Key is still being processed; retry after the Retry-After delay to get its result.",
	"illegal-transition":     "The order cannot make this change: only pending or confirmed orders can be cancelled, and rejected, expired or cancelled orders never change again.",
	"mixed-currencies":       "All products of an order must be priced in the same currency.",
	"total-out-of-range":     "The order's total is too large to be represented; order fewer items.",
	"unauthenticated":        "The request needs credentials that were missing or not accepted.",
	"forbidden":              "You may not do this.",
	"not-acceptable":         "The Accept header asks for a media type the API cannot produce; accept application/json.",
	"too-large":              "The request body is larger than the gateway accepts (64 KiB).",
	"unsupported-media-type": "Send JSON with Content-Type: application/json.",
	"unavailable":            "A service cannot answer right now; retry after the Retry-After delay.",
	"upstream-unavailable":   "A service this request needs cannot be reached or its circuit breaker is open; retry after the Retry-After delay.",
	"upstream-overloaded":    "Too many requests are in flight to a service this request needs; retry later.",
	"upstream-timeout":       "A service this request needs did not answer before the request's deadline.",
	"upstream-failed":        "A service this request needs failed; the failure was logged with the request id.",
	"bad-gateway":            "A service this request needs answered with something unusable; the failure was logged with the request id.",
	"cancelled":              "The request was cancelled before it completed, usually because the client or a caller gave up.",
	"timeout":                "The request did not complete before its deadline.",
	"rate-limited":           "Too many requests; retry after the Retry-After delay.",
	"invalid-token":          "The bearer token (or service token) is malformed, expired, not yet valid, signed by an unknown key or for another audience. Log in again or refresh the token.",
	"invalid-credentials":    "The email or the password is wrong. The answer is the same for an unknown email.",
	"too-many-attempts":      "Too many failed logins for this account; wait for the Retry-After delay.",
	"internal":               "An unexpected error; it was logged with the request id. Nothing about it is shown to clients.",
}

func describeProblem(w http.ResponseWriter, r *http.Request) {
	text, ok := problemTypes[r.PathValue("code")]
	if !ok {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "unknown problem type"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(problem.TypePrefix + r.PathValue("code") + "\n\n" + text + "\n"))
}
