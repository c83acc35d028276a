package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/intercloud/intercloud/vpn"
)

func init() {
	register(command{name: "keygen", summary: "create a WireGuard private key file and print its public key", run: runKeygen})
}

func runKeygen(_ context.Context, args []string) error {
	return keygen(os.Stdout, args)
}

func keygen(stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "", "private key `FILE` to create (mode 0600; base64, as wg genkey writes)")
	force := fs.Bool("force", false, "replace an existing key file (key rotation)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: intercloud keygen --out FILE [--force]\n\nThe public key, for the peer's config (links[].<end>.publicKey), is the last line printed.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	k, err := vpn.GenerateKey()
	if err != nil {
		return err
	}
	pub, err := k.PublicKey()
	if err != nil {
		return err
	}
	if err := vpn.WriteKeyFile(*out, k, *force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key written to %s\n%s\n", *out, pub)
	return nil
}
