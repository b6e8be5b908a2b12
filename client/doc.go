// Package client is the typed Go client of the bank-account API, importable from
// other modules as github.com/evbank/bank/client; generated from
// openapi.yaml by oapi-codegen (client and models, in client.gen.go).
//
// NewClientWithResponses gives a method per operation that decodes the answer
// by status: JSON200/JSON201 on success, ApplicationproblemJSON4xx for the
// RFC 9457 problems, and the declared response headers (ETag, Location,
// Retry-After...) in Headers2xx and so on.
//
// Regenerate after every change of openapi.yaml with `go generate
// ./client`; TestGeneratedCodeIsCurrent fails while the committed
// code differs from what the generator makes of the spec.
package client

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../openapi.yaml
