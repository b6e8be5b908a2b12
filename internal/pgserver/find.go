package pgserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNotFound is wrapped by FindBinaries (and so Start) when no PostgreSQL server
// binaries can be found.
var ErrNotFound = errors.New("PostgreSQL server binaries (initdb, postgres) not found")

// searchGlobs are where distribution packages put the server binaries, which they
// leave off PATH (Debian: /usr/lib/postgresql/15/bin; RHEL/PGDG: /usr/pgsql-15/bin).
// A variable so that a test can make the last resort search nowhere.
var searchGlobs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"}

// FindBinaries returns the directory holding both initdb and postgres. It looks in
// $PG_BIN_DIR if set (and only there: a wrong explicit setting is an error, not a
// reason to pick some other version), then in every PATH directory, then in the
// distributions' versioned directories, newest version first.
func FindBinaries() (dir string, err error) {
	if dir := os.Getenv("PG_BIN_DIR"); dir != "" {
		if hasBinaries(dir) {
			return filepath.Abs(dir)
		}
		return "", fmt.Errorf("%w in PG_BIN_DIR=%s: point PG_BIN_DIR at the directory that holds both (e.g. /usr/lib/postgresql/15/bin) or unset it", ErrNotFound, dir)
	}

	pathDirs := filepath.SplitList(os.Getenv("PATH"))
	for _, d := range pathDirs {
		if d != "" && hasBinaries(d) {
			return filepath.Abs(d)
		}
	}

	for _, g := range searchGlobs {
		dirs, _ := filepath.Glob(g) // only fails on a malformed pattern, and ours are constants
		sortNewestFirst(dirs)
		for _, d := range dirs {
			if hasBinaries(d) {
				return d, nil
			}
		}
	}

	return "", fmt.Errorf("%w: searched PG_BIN_DIR (unset), PATH (%s) and %s. "+
		"Install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql, which puts it in /usr/lib/postgresql/<version>/bin) "+
		"or set PG_BIN_DIR to the directory that holds initdb and postgres",
		ErrNotFound, strings.Join(pathDirs, string(filepath.ListSeparator)), strings.Join(searchGlobs, ", "))
}

// hasBinaries requires both programs in one directory, so that initdb and the server
// it prepares for always come from the same installation.
func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// sortNewestFirst orders versioned directories such as /usr/lib/postgresql/9.6/bin and
// /usr/lib/postgresql/15/bin by their version numbers, which a string sort gets wrong.
func sortNewestFirst(dirs []string) {
	version := func(dir string) []int {
		name := filepath.Base(filepath.Dir(dir))
		name = strings.TrimLeftFunc(name, func(r rune) bool { return r < '0' || r > '9' })
		var v []int
		for _, part := range strings.Split(name, ".") {
			n, err := strconv.Atoi(part)
			if err != nil {
				break
			}
			v = append(v, n)
		}
		return v
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		a, b := version(dirs[i]), version(dirs[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
}
