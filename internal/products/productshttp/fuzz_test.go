package productshttp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/products"
)

// fuzzPost posts body to path on h with the credentials in header and fails
// on a 5xx (the middleware turns panics into 500s), on an answer that is not
// JSON or on a refusal of the credentials (the input must reach the handler).
func fuzzPost(t *testing.T, h http.Handler, header http.Header, path, body string) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("POST %s %q: status %d: %s", path, body, rec.Code, rec.Body)
	}
	if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
		t.Fatalf("POST %s: status %d: the credentials were refused: %s", path, rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("POST %s %q: status %d with a body that is not JSON: %q", path, body, rec.Code, rec.Body)
	}
}

// FuzzReserveRequest posts arbitrary bodies to the reservation endpoint. "$P"
// in a body stands for the id of a product that exists, so that the fuzzer
// reaches the store often.
func FuzzReserveRequest(f *testing.F) {
	svc := newService(f)
	p, err := svc.Create(f.Context(), products.NewProduct{SKU: "FUZZ-1", Name: "Fuzz", Price: eur(1), Stock: 1_000_000})
	if err != nil {
		f.Fatal(err)
	}
	c := newCreds(f)
	h := c.handler(svc)
	f.Add(`{"order_id":"0190f000-0000-7000-8000-000000000001","lines":[{"product_id":"$P","quantity":1}]}`)
	f.Add(`{"order_id":"0190f000-0000-7000-8000-000000000002","lines":[{"product_id":"$P","quantity":1000}]}`)
	f.Add(`{"order_id":"0190f000-0000-7000-8000-000000000003","lines":[{"product_id":"0190f000-0000-7000-8000-00000000000f","quantity":1}]}`)
	f.Add(`{"order_id":"0190f000-0000-7000-8000-000000000004","lines":[{"product_id":"$P","quantity":1},{"product_id":"$P","quantity":2}]}`)
	f.Add(`{"order_id":"{0190f000-0000-7000-8000-000000000005}","lines":[{"product_id":"urn:uuid:$P","quantity":1}]}`)
	f.Add(`{"order_id":null,"lines":[{}]}`)
	f.Add(`{"lines":[[[[[[[[[[]]]]]]]]]]}`)
	f.Add(`{"order_id":"\u0000","lines":[{"quantity":1e308}]}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzPost(t, h, c.service(t), "/internal/v1/reservations", strings.ReplaceAll(body, "$P", p.ID))
	})
}

// FuzzCreateProduct posts arbitrary bodies to the create endpoint.
func FuzzCreateProduct(f *testing.F) {
	c := newCreds(f)
	h := c.handler(newService(f))
	f.Add(`{"sku":"MUG-001","name":"Mug","price":{"amount":1490,"currency":"EUR"},"stock":5}`)
	f.Add(`{"sku":"MUG-001","name":"Mug","description":"Tea\n\tand coffee","price":{"amount":100000000,"currency":"EUR"},"stock":1000000}`)
	f.Add(`{"sku":"MUG-002","name":" \u0085 ","price":{"amount":0,"currency":"EUR"},"stock":0}`)
	f.Add(`{"sku":"-","name":"\ud800","price":{"amount":-1,"currency":"eur"},"stock":1.5}`)
	f.Add(`{"sku":"A","name":"A","price":null,"stock":null}`)
	f.Add(`{"price":{"amount":9223372036854775808}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzPost(t, h, c.admin(t), "/api/v1/products", body)
	})
}
