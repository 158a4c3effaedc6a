// Package pkgdoc holds repository-wide tests of the code's shape: every
// package has exactly one doc comment, and imports point one way.
package pkgdoc

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", dir, err)
	}
	return dir
}

// packages returns the non-test Go files of every package directory under
// cmd/ and internal/, keyed by directory.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	root := repoRoot(t)
	pkgs := map[string][]string{}
	for _, top := range []string{"cmd", "internal", "bench"} {
		filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], path)
			}
			return nil
		})
	}
	return pkgs
}

func TestEveryPackageHasOneDoc(t *testing.T) {
	for dir, files := range packages(t) {
		var withDoc []string
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				withDoc = append(withDoc, filepath.Base(f))
			}
		}
		switch len(withDoc) {
		case 0:
			t.Errorf("package %s has no package doc comment", dir)
		case 1:
		default:
			t.Errorf("package %s has %d package doc comments (%v); keep exactly one", dir, len(withDoc), withDoc)
		}
	}
}

// Domain packages never import the wiring or the edges: gateways, the API
// and the node import them, not the other way round.
func TestImportsPointOneWay(t *testing.T) {
	root := repoRoot(t)
	edges := []string{"liaison/internal/node", "liaison/internal/api", "liaison/internal/gateway", "liaison/internal/console", "liaison/internal/demo"}
	domain := []string{"message", "label", "agreement", "guard", "envelope", "pki", "store", "audit"}
	for dir, files := range packages(t) {
		rel, _ := filepath.Rel(root, dir)
		isDomain := false
		for _, d := range domain {
			if rel == filepath.Join("internal", d) || strings.HasPrefix(rel, filepath.Join("internal", d)+string(filepath.Separator)) {
				isDomain = true
			}
		}
		if !isDomain {
			continue
		}
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				for _, e := range edges {
					if path == e || strings.HasPrefix(path, e+"/") {
						t.Errorf("%s imports %s: domain packages must not import edges or wiring", f, path)
					}
				}
			}
		}
	}
}
