package tls

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// TestSpecVectors checks the libp2p TLS spec's certificate test vectors
// (testdata/spec-vectors.json names their source): the valid ones
// authenticate the listed peer ID, the invalid one fails for its reason.
func TestSpecVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/spec-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Source  string
		Vectors []struct {
			Name        string
			Certificate string
			PeerID      string `json:"peer_id"`
			Error       string
		}
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != 4 {
		t.Fatalf("%d vectors in the file, want the spec's 4", len(file.Vectors))
	}
	reasons := map[string]error{"invalid signature": security.ErrInvalidSignature}
	// The vectors are valid from 1975 to 4096.
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			der, err := hex.DecodeString(v.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			key, err := verifyChain([][]byte{der}, now)
			if v.Error != "" {
				want, ok := reasons[v.Error]
				if !ok {
					t.Fatalf("unknown reason %q in the vectors file", v.Error)
				}
				if !errors.Is(err, want) {
					t.Fatalf("verify error %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			id, err := peer.IDFromPublicKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if id.String() != v.PeerID {
				t.Errorf("peer ID %s, want %s", id, v.PeerID)
			}
			// The same certificate outside its validity is refused.
			cert, _ := x509.ParseCertificate(der)
			if _, err := verifyChain([][]byte{der}, cert.NotBefore.Add(-time.Second)); !errors.Is(err, ErrBadCertificate) {
				t.Errorf("before NotBefore: error %v, want ErrBadCertificate", err)
			}
			if _, err := verifyChain([][]byte{der}, cert.NotAfter.Add(time.Second)); !errors.Is(err, ErrBadCertificate) {
				t.Errorf("after NotAfter: error %v, want ErrBadCertificate", err)
			}
		})
	}
}
