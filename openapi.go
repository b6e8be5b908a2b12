// Package bank holds what belongs to the module as a whole rather than to one
// process: the API contract. It lives at the root because go:embed cannot
// reach a parent directory, and openapi.yaml stays at the root where Spectral,
// the client generator and the tests read it.
package bank

import _ "embed"

// OpenAPI is openapi.yaml as committed: the api serves these very bytes, so
// the served contract cannot drift from the one the client is generated from.
//
//go:embed openapi.yaml
var OpenAPI []byte
