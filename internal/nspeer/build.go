package nspeer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// programPath is the import path of the peer program.
const programPath = "github.com/concordp2p/concord/faults/nspeer"

// buildTimeout bounds `go build`: a cold cache builds host and its
// dependencies, with -race more slowly.
const buildTimeout = 5 * time.Minute

// BuildConfig says how to build the peer program; the zero value is a plain
// build.
type BuildConfig struct {
	// Race builds the program with -race, so that a data race in a peer
	// fails the test as one in the test process would. Pass RaceEnabled
	// to follow the test binary.
	Race bool
	// Package is the import path of the program to build; "" means the
	// Concord peer program (faults/nspeer). Another program must speak
	// the same control protocol (the interop module's go-libp2p peer).
	// It is built from the test's working directory, so its module is
	// the test's.
	Package string
}

// Program is the peer program built for one test, and the directory that
// holds it and the peers' control sockets and stderr files (short, since a
// Unix socket path must fit in 108 bytes, which t.TempDir's names do not
// always). Its Start method is safe for concurrent use.
type Program struct {
	bin  string
	dir  string
	race bool

	mu sync.Mutex
	n  int // peers started, to name their files
}

// Build builds the peer program with `go build` into a temporary directory
// that is removed when tb ends. Build once per test and start every peer
// of that test and its subtests from the result.
func Build(tb testing.TB, cfg BuildConfig) *Program {
	tb.Helper()
	dir, err := os.MkdirTemp("", "nspeer")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "nspeer")
	args := []string{"build", "-o", bin}
	if cfg.Race {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	pkg := cfg.Package
	if pkg == "" {
		pkg = programPath
	}
	out, err := exec.CommandContext(ctx, goBin, append(args, pkg)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("nspeer: building the peer program: %v\n%s", err, out)
	}
	return &Program{bin: bin, dir: dir, race: cfg.Race}
}

// files returns the control socket and stderr paths for the next peer.
func (p *Program) files() (sock, stderr string, n int) {
	p.mu.Lock()
	p.n++
	n = p.n
	p.mu.Unlock()
	return filepath.Join(p.dir, fmt.Sprintf("c%d.sock", n)), filepath.Join(p.dir, fmt.Sprintf("p%d.stderr", n)), n
}
