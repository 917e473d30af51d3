package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/concordp2p/concord/peer"
)

var idCommand = command{
	name:    "id",
	summary: "create or read a key file and print its peer ID",
	help: `
Reads the private key in -key and prints its peer ID. If the file does not
exist, creates it first with a fresh Ed25519 key (mode 0600, written
atomically; an existing file is never replaced) and says so on stderr. The
file's directory must exist, except the default one, which is created
(mode 0700).
A key file that group or others can read is refused.

The default file is identity.key in the concord folder of the user's
configuration directory ($XDG_CONFIG_HOME or ~/.config on Linux).`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		keyPath := fs.String("key", defaultKeyPath(), "key `file`")
		verbose := fs.Bool("v", false, "also print the key type and the CID form of the peer ID")
		return func(_ context.Context, e *env, args []string) error {
			if err := exactArgs("id", args); err != nil {
				return err
			}
			if *keyPath == "" {
				return usageErrorf("id: -key is empty and there is no user configuration directory")
			}
			k, created, err := loadOrCreateKey(*keyPath, *keyPath == defaultKeyPath())
			if err != nil {
				return fmt.Errorf("id: %w", err)
			}
			id, err := peer.IDFromPrivateKey(k)
			if err != nil {
				return fmt.Errorf("id: deriving the peer ID: %w", err)
			}
			if created {
				fmt.Fprintf(e.stderr, "created %s\n", *keyPath)
			}
			if !*verbose {
				fmt.Fprintln(e.stdout, id)
				return nil
			}
			fmt.Fprintf(e.stdout, "peer ID   %s\nCID form  %s\nkey type  %s\nkey file  %s\n", id, id.CID(), k.Type(), *keyPath)
			return nil
		}
	},
}

// defaultKeyPath is where `concord id` keeps its key unless told otherwise;
// empty when the user has no configuration directory.
func defaultKeyPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "concord", "identity.key")
}
