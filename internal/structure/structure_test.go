// Package structure holds tests of the module's shape: which package may
// hold SQL, import the queue library, or depend on the sync stages. They
// read `go list` and the source files, so a change that breaks a boundary
// fails here and not in review.
package structure

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/roster-dev/roster"

type pkg struct {
	ImportPath   string
	Name         string
	Dir          string
	GoFiles      []string
	TestGoFiles  []string
	XTestGoFiles []string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	cmd.Dir = moduleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	return pkgs
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

// under reports whether import path p is the module's package dir or below it.
func under(p, dir string) bool {
	if p != module && !strings.HasPrefix(p, module+"/") {
		return false
	}
	r := rel(p)
	return r == dir || strings.HasPrefix(r, dir+"/")
}

// TestNoPackageNamedSync: the standard library's sync must never need an
// alias.
func TestNoPackageNamedSync(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.Name == "sync" {
			t.Errorf("%s is named sync; it shadows the standard library", p.ImportPath)
		}
	}
}

// TestOnlyQueueImportsAsynq: Asynq is an implementation detail of queue.
func TestOnlyQueueImportsAsynq(t *testing.T) {
	for _, p := range listPackages(t) {
		if under(p.ImportPath, "queue") {
			continue
		}
		for _, imp := range concat(p.Imports, p.TestImports, p.XTestImports) {
			if strings.HasPrefix(imp, "github.com/hibiken/asynq") {
				t.Errorf("%s imports %s; only queue may", p.ImportPath, imp)
			}
		}
	}
}

// TestConnectorsDependOnNoStage: a connector knows the contract, never the
// poller or the reconciler.
func TestConnectorsDependOnNoStage(t *testing.T) {
	found := false
	for _, p := range listPackages(t) {
		if !under(p.ImportPath, "connectors") {
			continue
		}
		found = true
		cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", p.ImportPath)
		cmd.Dir = moduleRoot(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p.ImportPath, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if under(dep, "sync") || under(dep, "app") || under(dep, "api") || under(dep, "queue") {
				t.Errorf("%s depends on %s; connectors may use only the contract and the store", p.ImportPath, dep)
			}
		}
	}
	if !found {
		t.Fatal("no package under connectors/")
	}
}

// sqlLike matches statements, not prose: an upper-case keyword (as the
// store writes them) followed by what SQL puts after it.
var sqlLike = regexp.MustCompile(`\b(SELECT\s+[\w*.,\s()]+\s+FROM\s+\w|INSERT\s+INTO\s+\w|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s+\w|CREATE\s+(TABLE|INDEX|SCHEMA)\s|ALTER\s+TABLE\s|DROP\s+(TABLE|SCHEMA)\s)`)

// sqlExempt are the packages outside store that may hold SQL, with why.
var sqlExempt = map[string]string{
	// It creates and drops a throw-away PostgreSQL schema per test.
	"internal/testenv": "test schemas",
}

// TestSQLOnlyInStore: the schema is the store's; no other package names a
// table or writes a statement.
func TestSQLOnlyInStore(t *testing.T) {
	tables := tableNames(t)
	if len(tables) < 5 {
		t.Fatalf("found tables %v in the migrations; want the schema", tables)
	}
	// Names such as "teams" or "events" are also words of the API; only the
	// distinctive ones are looked for on their own, the others through
	// sqlLike.
	var distinctive []string
	for _, tb := range tables {
		if strings.Contains(tb, "_") {
			distinctive = append(distinctive, tb)
		}
	}
	tableRe := regexp.MustCompile(`\b(` + strings.Join(distinctive, "|") + `)\b`)
	for _, p := range listPackages(t) {
		if under(p.ImportPath, "store") || under(p.ImportPath, "internal/structure") {
			continue
		}
		if _, ok := sqlExempt[rel(p.ImportPath)]; ok {
			continue
		}
		for _, f := range concat(p.GoFiles, p.TestGoFiles, p.XTestGoFiles) {
			path := filepath.Join(p.Dir, f)
			for _, s := range stringLiterals(t, path) {
				switch {
				case sqlLike.MatchString(s.text):
					t.Errorf("%s: a SQL statement outside store: %q", s.pos, short(s.text))
				case tableRe.MatchString(s.text):
					t.Errorf("%s: table name %q outside store: %q", s.pos, tableRe.FindString(s.text), short(s.text))
				}
			}
		}
	}
}

// tableNames reads the tables the migrations create.
func tableNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot(t), "store", "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations under store/migrations: %v", err)
	}
	re := regexp.MustCompile(`(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				out = append(out, m[1])
			}
		}
	}
	return out
}

type literal struct {
	pos  token.Position
	text string
}

func stringLiterals(t *testing.T, path string) []literal {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var out []literal
	ast.Inspect(f, func(n ast.Node) bool {
		if _, ok := n.(*ast.ImportSpec); ok {
			return false
		}
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		out = append(out, literal{pos: fset.Position(lit.Pos()), text: s})
		return true
	})
	return out
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// TestDetectorsFire keeps the checks above honest: each must catch what it
// is for.
func TestDetectorsFire(t *testing.T) {
	for _, s := range []string{
		"SELECT id, name FROM mirror_users WHERE x = ?",
		"INSERT INTO roster_members (a) VALUES (?)",
		"UPDATE directories SET state = ?",
		"DELETE FROM events WHERE id < ?",
		"CREATE TABLE foo (id INT)",
	} {
		if !sqlLike.MatchString(s) {
			t.Errorf("sqlLike misses %q", s)
		}
	}
	for _, s := range []string{
		"select the groups from the list",
		"update the roster",
		"delete the directory",
	} {
		if sqlLike.MatchString(s) {
			t.Errorf("sqlLike flags prose %q", s)
		}
	}
}
