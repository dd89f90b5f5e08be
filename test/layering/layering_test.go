// Package layering checks the layering rules of ARCHITECTURE.md on the
// source: engines under internal/ return typed errors and never build gRPC
// statuses, and import no component package.
package layering

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/metricsmodule/metricsmodule/"

// transport are the gRPC interceptors and codecs under internal/: they
// speak gRPC by design.
// internal/grpcclient reads the codes a gRPC destination answered.
var transport = []string{"internal/authz/grpc.go", "internal/grpccodec/", "internal/utf8check/", "internal/grpcclient/"}

func TestEnginesBuildNoGRPCStatusAndImportNoComponent(t *testing.T) {
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "google.golang.org/grpc/codes" || p == "google.golang.org/grpc/status" {
				allowed := false
				for _, tr := range transport {
					allowed = allowed || strings.HasPrefix(rel, tr)
				}
				if !allowed {
					t.Errorf("%s imports %s: return a typed error with a kind and map it in the server's one mapping file", rel, p)
				}
			}
			for _, comp := range []string{"receiver/", "processor/", "extension/", "exporter/", "connector/"} {
				if strings.HasPrefix(p, module+comp) {
					t.Errorf("%s imports the component package %s: engines import no component", rel, p)
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, checked, 50, "the walk found the engines")
}
