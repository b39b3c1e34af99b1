package usershttp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/microshop/microshop/internal/platform/server"
	"github.com/microshop/microshop/internal/users/usershttp"
)

type described struct {
	ops    map[string]bool // "METHOD path" -> needs a bearer token
	bearer bool
}

func describe(t *testing.T) described {
	t.Helper()
	api := huma.NewAPI(server.Config("test"), nopAdapter{})
	usershttp.Describe(api)
	doc := api.OpenAPI()
	d := described{ops: map[string]bool{}}
	for path, item := range doc.Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete} {
			if op != nil {
				d.ops[method+" "+path] = len(op.Security) > 0
			}
		}
	}
	s := doc.Components.SecuritySchemes["bearer"]
	d.bearer = s != nil && s.Type == "http" && strings.EqualFold(s.Scheme, "bearer")
	return d
}

// nopAdapter lets huma collect operations without serving them.
type nopAdapter struct{}

func (nopAdapter) Handle(*huma.Operation, func(huma.Context))   {}
func (nopAdapter) ServeHTTP(http.ResponseWriter, *http.Request) {}
