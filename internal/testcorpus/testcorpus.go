// Package testcorpus finds the real-world manifests some tests read. They
// live outside the repository (../shared/corpus beside the clone), so a
// clone on its own skips those tests with the reason, and a machine that
// has them (CI) runs them in full.
package testcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Env names a corpus directory elsewhere; when set it must exist.
const Env = "POD_HARDENER_CORPUS"

// Dir returns the corpus directory, or skips the test with the reason when
// it is absent. It fails instead where a skip would hide the check: when
// the directory was named in $POD_HARDENER_CORPUS, or under CI.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, named := os.LookupEnv(Env)
	if !named || dir == "" {
		root, err := moduleRoot()
		if err != nil {
			tb.Fatalf("finding the repository root: %v", err)
		}
		dir = filepath.Join(root, "..", "shared", "corpus")
	}
	if _, err := os.Stat(dir); err != nil {
		switch {
		case named && dir != "":
			tb.Fatalf("corpus named in $%s not found: %v", Env, err)
		case os.Getenv("CI") != "":
			tb.Fatalf("corpus not found at %s (CI must run the corpus tests; set $%s): %v", dir, Env, err)
		}
		tb.Skipf("corpus of real-world manifests not found at %s: it lives outside the repository; set $%s to run this test", dir, Env)
	}
	return dir
}

// Files returns the corpus's YAML files (skipping as Dir does), failing
// when there are fewer than min: a half-copied corpus is not the corpus.
func Files(tb testing.TB, min int) []string {
	tb.Helper()
	dir := Dir(tb)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) < min {
		tb.Fatalf("only %d corpus files in %s, want at least %d", len(files), dir, min)
	}
	return files
}

// moduleRoot walks up from the test's working directory (its package's
// directory) to the go.mod.
func moduleRoot() (string, error) {
	start, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for dir := start; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", start)
		}
		dir = parent
	}
}
