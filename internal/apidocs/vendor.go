package apidocs

import (
	"bytes"
	"regexp"
)

// Package is the npm package the renderer comes from; its version is pinned
// by package-lock.json and recorded in assets/VERSION.
const Package = "swagger-ui-dist"

// Vendored are the files of Package copied into assets/, by their name in the
// package. Only the standalone bundle and its stylesheet are needed (no
// standalone preset: its top bar would offer to load any URL).
var Vendored = []string{"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"}

var sourceMap = regexp.MustCompile(`(?m)^\s*(//|/\*)# sourceMappingURL=\S*?(\s*\*/)?\s*$\n?`)

// Prepare is what vendoring does to a file of Package: it drops the
// sourceMappingURL comments, since the maps are not vendored (they would
// double the size) and a browser with its developer tools open would ask the
// api for them and log a 404.
func Prepare(b []byte) []byte {
	return append(bytes.TrimRight(sourceMap.ReplaceAll(b, nil), "\n"), '\n')
}
