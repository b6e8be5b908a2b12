// Command devtoken prints a development access token for the api that
// `make run` starts (`make token`):
//
//	go run ./tools/devtoken -sub alice -scope "bank:read bank:write"
//
// It signs with the key under .data/auth (created, with its JWKS, if absent),
// issuer bank-dev, audience bank. For local development only.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/evbank/bank/internal/devauth"
)

func main() {
	sub := flag.String("sub", "alice", "the token's subject: the principal, owner of the accounts it opens")
	scope := flag.String("scope", "bank:read bank:write", "space-separated scopes: bank:read, bank:write, bank:admin")
	ttl := flag.Duration("ttl", 24*time.Hour, "how long the token is valid")
	data := flag.String("data", ".data", "the data directory of make run")
	flag.Parse()
	if *sub == "" || *ttl <= 0 {
		fmt.Fprintln(os.Stderr, "devtoken: -sub must not be empty and -ttl must be positive")
		os.Exit(2)
	}
	key, _, err := devauth.Ensure(*data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devtoken:", err)
		os.Exit(1)
	}
	tok, err := devauth.Token(key, *sub, *scope, *ttl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devtoken:", err)
		os.Exit(1)
	}
	fmt.Println(tok)
}
