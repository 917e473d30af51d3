// The layers, lowest first:
//
//	network, peer  ←  internal/*  ←  transport/tcp  ←  simopen, security, muxer  ←  upgrader  ←  host  ←  conformance, faults, spec  ←  cmd

package deptest

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const module = "github.com/concordp2p/concord"

// layers maps a top-level folder of the module to its rank and family. A
// package may import another Concord package only if that package's rank is
// lower, or if both are in the same family (security/noise importing
// security, for instance).
var layers = map[string]int{
	"network":     0,
	"peer":        0,
	"internal":    1,
	"transport":   2,
	"simopen":     3,
	"security":    3,
	"muxer":       3,
	"upgrader":    4,
	"host":        5,
	"conformance": 6,
	"faults":      6,
	"spec":        6,
	"cmd":         7,
}

// family is the folder under the module root that a package belongs to.
func family(importPath string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
	if i := strings.IndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return rel
}

// allowed reports whether a package of family from may import to, and why not.
func allowed(from, to string) (bool, string) {
	ff, tf := family(from), family(to)
	if ff == tf {
		return true, ""
	}
	fr, ok1 := layers[ff]
	tr, ok2 := layers[tf]
	if !ok1 || !ok2 {
		return false, "folder not in the layer table of internal/deptest (add it, with its rank)"
	}
	if tr < fr {
		return true, ""
	}
	if tr == fr {
		return false, "siblings on one layer must not import each other"
	}
	return false, "a lower layer must not import a higher one"
}

func TestLayering(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module (interop/)
			}
		}
		pkg, err := build.ImportDir(path, build.ImportComment)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			t.Errorf("reading %s: %v", path, err)
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		self := module + "/" + filepath.ToSlash(rel)
		if path == root {
			self = module
		}
		checked++
		for _, imports := range [][]string{pkg.Imports, pkg.TestImports, pkg.XTestImports} {
			for _, imp := range imports {
				if !strings.HasPrefix(imp, module+"/") || imp == self {
					continue
				}
				if ok, why := allowed(self, imp); !ok {
					t.Errorf("%s imports %s: %s", self, imp, why)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 2 {
		t.Fatalf("checked %d packages; the walk found nothing to check", checked)
	}
}

// TestRules checks the rule function itself, so that TestLayering cannot pass
// by allowing everything.
func TestRules(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"security/noise", "security", true},
		{"security", "peer", true},
		{"security/tls", "network", true},
		{"upgrader", "simopen", true},
		{"host", "upgrader", true},
		{"security", "upgrader", false},
		{"security/noise", "simopen", false},
		{"peer", "transport/tcp", false},
		{"transport/tcp", "security", false},
		{"muxer/yamux", "security", false},
		{"upgrader", "host", false},
		{"simopen", "muxer", false},
		{"newfolder", "peer", false},
	} {
		got, _ := allowed(module+"/"+tc.from, module+"/"+tc.to)
		if got != tc.want {
			t.Errorf("allowed(%s → %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
