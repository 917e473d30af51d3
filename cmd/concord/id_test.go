package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordp2p/concord/peer"
)

// TestIDMissingDirectory: -key in a directory that does not exist is an
// error naming it, and creates nothing (a mistyped path must not leave
// folders behind).
func TestIDMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "deeper", "x.key")
	r := runCmd(t, "id", "-key", path)
	if r.code != exitFailure || r.stdout != "" {
		t.Errorf("id -key in a missing directory: exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
	}
	oneErrorLine(t, r, "directory "+filepath.Dir(path)+" does not exist")
	if _, err := os.Stat(filepath.Join(dir, "sub")); err == nil {
		t.Errorf("id created %s", filepath.Join(dir, "sub"))
	}
}

func TestID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	first := runCmd(t, "id", "-key", path)
	if first.code != exitOK || first.stderr != "created "+path+"\n" {
		t.Fatalf("first id: exit %d, stderr %q; want 0 and %q", first.code, first.stderr, "created "+path+"\n")
	}
	id, err := peer.Decode(strings.TrimSpace(first.stdout))
	if err != nil {
		t.Fatalf("id printed %q: %v", first.stdout, err)
	}
	k, err := peer.ReadKeyFile(path)
	if err != nil {
		t.Fatalf("reading the key id wrote: %v", err)
	}
	if !id.MatchesPrivateKey(k) {
		t.Errorf("printed ID %s does not match the key file", id)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}

	again := runCmd(t, "id", "-key", path)
	if again.code != exitOK || again.stdout != first.stdout || again.stderr != "" {
		t.Errorf("second id: exit %d, stdout %q, stderr %q; want 0, %q and nothing on stderr", again.code, again.stdout, again.stderr, first.stdout)
	}

	v := runCmd(t, "id", "-v", "-key", path)
	for _, want := range []string{"peer ID   " + id.String(), "CID form  " + id.CID(), "key type  Ed25519"} {
		if !strings.Contains(v.stdout, want) {
			t.Errorf("id -v lacks %q:\n%s", want, v.stdout)
		}
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	bad := runCmd(t, "id", "-key", path)
	if bad.code != exitFailure || bad.stdout != "" {
		t.Errorf("group-readable key: exit %d, stdout %q; want 1 and nothing", bad.code, bad.stdout)
	}
	oneErrorLine(t, bad, "chmod")
	if k2, err := os.ReadFile(path); err != nil || len(k2) == 0 {
		t.Errorf("the refused key file was changed: %v", err)
	}
}

func TestIDRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "id", "-key", path)
	if r.code != exitFailure {
		t.Errorf("garbage key file: exit %d, want 1", r.code)
	}
	oneErrorLine(t, r, "id: reading key file")
	if got, _ := os.ReadFile(path); string(got) != "not a key" {
		t.Errorf("the garbage key file was replaced with %q", got)
	}
}
