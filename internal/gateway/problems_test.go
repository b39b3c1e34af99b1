package gateway_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/microshop/microshop/internal/gateway"
	"github.com/microshop/microshop/internal/platform/fault"
	"github.com/microshop/microshop/internal/platform/logging"
	"github.com/microshop/microshop/internal/platform/problem"
)

// moduleRoot returns the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

type goFile struct {
	path string
	dir  string
	f    *ast.File
}

// codeScanner finds the problem codes that Go code can return.
type codeScanner struct {
	fset   *token.FileSet
	files  []goFile
	consts map[string]map[string]string // package dir -> const name -> string value
	byPkg  map[string]map[string]string // package name -> const name -> string value
	codes  map[string][]string          // code -> where
	errs   []string
}

func scanTree(t *testing.T, root string) *codeScanner {
	t.Helper()
	s := &codeScanner{fset: token.NewFileSet(), consts: map[string]map[string]string{},
		byPkg: map[string]map[string]string{}, codes: map[string][]string{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(s.fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			s.errs = append(s.errs, "parse: "+err.Error())
			return nil
		}
		s.files = append(s.files, goFile{p, filepath.Dir(p), f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// String constants, so that codes named by a constant are found too.
	for _, gf := range s.files {
		for _, decl := range gf.f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if v, ok := stringLit(vs.Values[i]); ok {
						if s.consts[gf.dir] == nil {
							s.consts[gf.dir] = map[string]string{}
						}
						if s.byPkg[gf.f.Name.Name] == nil {
							s.byPkg[gf.f.Name.Name] = map[string]string{}
						}
						s.consts[gf.dir][n.Name] = v
						s.byPkg[gf.f.Name.Name][n.Name] = v
					}
				}
			}
		}
	}
	for _, gf := range s.files {
		for _, decl := range gf.f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			s.scanFunc(gf, fn)
		}
	}
	return s
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(bl.Value)
	return v, err == nil
}

// scanFunc records the codes of fn: arguments of WithCode, the code argument of
// problem.New and Code fields of fault.Error literals. A code held in a local
// variable (as in server.fromHuma) stands for every string assigned to it; an
// empty code means the kind's default, checked apart.
func (s *codeScanner) scanFunc(gf goFile, fn *ast.FuncDecl) {
	// Strings assigned to local variables, to resolve problem.New(status, code, ...).
	locals := map[string][]string{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
			for i, l := range as.Lhs {
				if id, ok := l.(*ast.Ident); ok {
					if v, ok := stringLit(as.Rhs[i]); ok {
						locals[id.Name] = append(locals[id.Name], v)
					}
				}
			}
		}
		return true
	})
	where := func(n ast.Node) string {
		pos := s.fset.Position(n.Pos())
		return filepath.Base(filepath.Dir(pos.Filename)) + "/" + filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line)
	}
	add := func(e ast.Expr) {
		vals, ok := s.resolve(gf, e, locals)
		if !ok {
			s.errs = append(s.errs, where(e)+": cannot tell which problem code this is; use a string literal or constant")
			return
		}
		for _, v := range vals {
			if v == "" {
				continue
			}
			s.codes[v] = append(s.codes[v], where(e))
		}
	}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch {
			case sel.Sel.Name == "WithCode" && len(n.Args) == 1:
				add(n.Args[0])
			case sel.Sel.Name == "New" && isIdent(sel.X, "problem") && len(n.Args) == 3:
				add(n.Args[1])
			}
		case *ast.CompositeLit:
			if !isFaultError(n.Type, gf.f.Name.Name) {
				return true
			}
			for _, el := range n.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Code") {
					add(kv.Value)
				}
			}
		}
		return true
	})
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isFaultError(e ast.Expr, pkg string) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		return isIdent(e.X, "fault") && e.Sel.Name == "Error"
	case *ast.Ident:
		return pkg == "fault" && e.Name == "Error"
	}
	return false
}

func (s *codeScanner) resolve(gf goFile, e ast.Expr, locals map[string][]string) ([]string, bool) {
	if v, ok := stringLit(e); ok {
		return []string{v}, true
	}
	switch e := e.(type) {
	case *ast.Ident:
		if v, ok := s.consts[gf.dir][e.Name]; ok {
			return []string{v}, true
		}
		if vs, ok := locals[e.Name]; ok {
			return vs, true
		}
	case *ast.SelectorExpr:
		if pkg, ok := e.X.(*ast.Ident); ok {
			if v, ok := s.byPkg[pkg.Name][e.Sel.Name]; ok {
				return []string{v}, true
			}
		}
	}
	return nil, false
}

// TestEveryProblemCodeIsDocumented scans the module's Go code for problem codes
// and checks that the gateway describes each one at /problems/{code}.
func TestEveryProblemCodeIsDocumented(t *testing.T) {
	s := scanTree(t, moduleRoot(t))
	for _, e := range s.errs {
		t.Error(e)
	}
	// The default code of every kind, as problem.From gives it.
	for k := fault.Kind(0); !strings.HasPrefix(k.String(), "kind("); k++ {
		code := strings.TrimPrefix(problem.From(fault.New(k, "x")).Type, problem.TypePrefix)
		s.codes[code] = append(s.codes[code], "default code of kind "+k.String())
	}
	// Guard the scanner itself: codes from each kind of source must be found.
	for _, code := range []string{"email-taken", "too-large", "validation-failed", "method-not-allowed", "upstream-timeout", "upstream-overloaded", "cancelled", "bad-gateway"} {
		if _, ok := s.codes[code]; !ok {
			t.Errorf("the scanner did not find %q: it is broken", code)
		}
	}

	h := gateway.Handler(nil, nil, testAuthn(), gateway.Limits{}, logging.Discard())
	codes := make([]string, 0, len(s.codes))
	for c := range s.codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, code := range codes {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, problem.TypePrefix+code, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("problem code %q (used at %s) is not documented in internal/gateway/problems.go", code, strings.Join(s.codes[code], ", "))
			continue
		}
		if body := rec.Body.String(); !strings.HasPrefix(body, problem.TypePrefix+code+"\n\n") || len(body) < len(problem.TypePrefix+code)+20 {
			t.Errorf("description of %q is too thin: %q", code, body)
		}
	}
}
