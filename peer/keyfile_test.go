package peer

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	k, err := GenerateKey(Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatalf("WriteKeyFile: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", got)
	}
	raw, _ := os.ReadFile(path)
	want, _ := MarshalPrivateKey(k)
	if !bytes.Equal(raw, want) {
		t.Errorf("key file holds %x, want the PrivateKey message %x", raw, want)
	}
	got, err := ReadKeyFile(path)
	if err != nil {
		t.Fatalf("ReadKeyFile: %v", err)
	}
	if !got.Equal(k) {
		t.Errorf("ReadKeyFile gave a different key")
	}
	assertOnlyFiles(t, dir, "identity.key")
}

// TestKeyFileNoOverwrite: an existing file is never replaced.
func TestKeyFileNoOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	first, _ := GenerateKey(Ed25519, nil)
	second, _ := GenerateKey(Ed25519, nil)
	if err := WriteKeyFile(path, first); err != nil {
		t.Fatal(err)
	}
	err := WriteKeyFile(path, second)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteKeyFile: got %v, want fs.ErrExist", err)
	}
	got, err := ReadKeyFile(path)
	if err != nil || !got.Equal(first) {
		t.Errorf("after the refused write: got %v, %v; want the first key", got, err)
	}
	assertOnlyFiles(t, dir, "identity.key")

	// A file that is not a key is not replaced either.
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(other, first); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteKeyFile over another file: got %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "keep me" {
		t.Errorf("other file now holds %q, want it untouched", b)
	}
}

func TestKeyFilePermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.key")
	k, _ := GenerateKey(Ed25519, nil)
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []fs.FileMode{0o640, 0o604, 0o644, 0o660, 0o610, 0o601, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKeyFile(path)
		var ie *InsecureKeyFileError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInsecureKeyFile) {
			t.Fatalf("mode %04o: got %v, want *InsecureKeyFileError", mode, err)
		}
		if ie.Mode != mode || ie.Path != path {
			t.Errorf("mode %04o: error carries mode %04o path %s", mode, ie.Mode, ie.Path)
		}
		if fix := "chmod 600 " + path; !strings.Contains(err.Error(), fix) {
			t.Errorf("mode %04o: message %q does not say %q", mode, err, fix)
		}
	}
	for _, mode := range []fs.FileMode{0o600, 0o400} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(path); err != nil {
			t.Errorf("mode %04o: got %v, want nil", mode, err)
		}
	}
}

func TestReadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(sub); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("directory: got %v, want ErrMalformedKey", err)
	}
	for name, content := range map[string][]byte{
		"empty":   nil,
		"garbage": []byte("-----BEGIN PRIVATE KEY-----"),
		"huge":    bytes.Repeat([]byte{0x08}, maxKeyFile+1),
		"public":  specVectors(t)["ed25519-public"],
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(p); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: got %v, want ErrMalformedKey", name, err)
		}
	}
	if err := WriteKeyFile(filepath.Join(dir, "nodir", "k"), nil); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("WriteKeyFile(nil key): got %v, want ErrMalformedKey", err)
	}
	k, _ := GenerateKey(Ed25519, nil)
	if err := WriteKeyFile(filepath.Join(dir, "nodir", "k"), k); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteKeyFile in a missing directory: got %v, want fs.ErrNotExist", err)
	}
}

// assertOnlyFiles fails unless dir holds exactly the named entries (no
// temporary files left behind).
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("directory holds %v, want %v", got, names)
	}
}
