package connectors_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenForConnectors are the core packages a connector must not import:
// a connector knows the contract in this package and nothing of the stages
// that consume it, so a new source is one folder that cannot reach into the
// poller, the reconciler or the wiring.
var forbiddenForConnectors = []string{
	"github.com/roster-dev/roster/sync",
	"github.com/roster-dev/roster/app",
	"github.com/roster-dev/roster/api",
	"github.com/roster-dev/roster/queue",
}

// TestConnectorsImportOnlyTheContract fails when a file under connectors/
// (tests included) imports the poller, the reconciler or the wiring.
func TestConnectorsImportOnlyTheContract(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbiddenForConnectors {
				if p == bad || strings.HasPrefix(p, bad+"/") {
					t.Errorf("connectors/%s imports %s: a connector may use only the connectors contract", filepath.ToSlash(path), p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d files under connectors/; the walk is broken", checked)
	}
}
