package peer

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Key files hold one MarshalPrivateKey message, the format go-libp2p and
// other implementations store keys in.

// WriteKeyFile writes k to path with mode 0600. It never replaces an
// existing file: if path exists the error wraps fs.ErrExist and the file is
// left untouched (delete it first to rotate a key on purpose, losing the
// old identity is not something to do by accident). The write is atomic:
// the key is written and synced to a temporary file in the same directory,
// which is then hard-linked into place (link fails if path exists, so there
// is no window where a concurrent writer could be overwritten) and removed;
// readers see either no file or the whole key. The directory's filesystem
// must support hard links (any Linux or macOS local filesystem does).
func WriteKeyFile(path string, k PrivKey) error {
	b, err := MarshalPrivateKey(k)
	if err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // the linked name keeps the data
	// CreateTemp already uses 0600; make it explicit and umask-proof.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing key file %s: syncing: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// Persist the new directory entry; a failure here leaves a valid
		// file, so it is not reported.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// maxKeyFile bounds what ReadKeyFile reads; a key message is far smaller.
const maxKeyFile = maxKeyMessage

// ReadKeyFile reads a private key written by WriteKeyFile (or by another
// libp2p implementation in the same format). It refuses a file whose mode
// grants any access to group or others with an *InsecureKeyFileError
// (wrapping ErrInsecureKeyFile) whose message gives the chmod command that
// fixes it, and refuses anything but a regular file.
func ReadKeyFile(path string) (PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	defer f.Close()
	// Check the opened file, not the path, so the checked file is the read one.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("reading key file %s: %w: not a regular file (%v)", path, ErrMalformedKey, st.Mode().Type())
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, &InsecureKeyFileError{Path: path, Mode: st.Mode().Perm()}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("reading key file %s: %w: larger than %d bytes", path, ErrMalformedKey, maxKeyFile)
	}
	k, err := UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	return k, nil
}
