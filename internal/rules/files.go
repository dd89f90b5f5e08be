package rules

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// FileError is a rule file that does not load: Prometheus' own checks
// (YAML, PromQL, templates, durations; what promtool check rules reports)
// and ours (names the store would not keep as written). Each problem
// carries the file and the line:column.
type FileError struct {
	// File is the rule file (or the glob that matched nothing).
	File string
	// Problems are the messages, each with line:column when known.
	Problems []string
}

func (e *FileError) Error() string {
	return fmt.Sprintf("rules.files: %s: %s; fix the file (promtool check rules %s checks its format and PromQL)",
		e.File, strings.Join(e.Problems, "; "), e.File)
}

// expand resolves the globs to a sorted list of files. A glob without
// wildcards must name an existing file; a glob with wildcards may match
// nothing (rules come and go with the files).
func expand(globs []string) ([]string, error) {
	seen := map[string]struct{}{}
	var out []string
	for _, g := range globs {
		matches, err := filepath.Glob(g)
		if err != nil {
			return nil, &FileError{File: g, Problems: []string{fmt.Sprintf("not a valid glob: %v", err)}}
		}
		if len(matches) == 0 && !strings.ContainsAny(g, "*?[") {
			return nil, &FileError{File: g, Problems: []string{fmt.Sprintf("%v (the file does not exist); correct the path or use a glob", errNoFiles)}}
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.IsDir() {
				continue
			}
			if _, dup := seen[m]; !dup {
				seen[m] = struct{}{}
				out = append(out, m)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

var checkParser = parser.NewParser(parser.Options{})

// checkFiles checks every file as the rules manager will load it, and the
// record names and rule labels the store would rename.
func checkFiles(files []string) error {
	var errs []error
	for _, f := range files {
		if err := checkFile(f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkFile(file string) error {
	content, err := os.ReadFile(file)
	if err != nil {
		return &FileError{File: file, Problems: []string{fmt.Sprintf("cannot read: %v", err)}}
	}
	fe := &FileError{File: file}
	_, errs := rulefmt.Parse(content, false, model.UTF8Validation, checkParser, slog.New(slog.DiscardHandler))
	for _, e := range errs {
		fe.Problems = append(fe.Problems, e.Error())
	}
	var node struct {
		Groups []rulefmt.RuleGroupNode `yaml:"groups"`
	}
	if err := yaml.Unmarshal(content, &node); err != nil {
		if len(fe.Problems) == 0 {
			fe.Problems = append(fe.Problems, err.Error())
		}
		return fe
	}
	for _, g := range node.Groups {
		for _, k := range sortedKeys(g.Labels) {
			if !storedLabel(k) {
				fe.Problems = append(fe.Problems, fmt.Sprintf("%d:%d: group %q: label %q would be stored under another name; use [a-zA-Z0-9] runs joined by single underscores", g.Line, g.Column, g.Name, k))
			}
		}
		for i, r := range g.Rules {
			if r.Record.Value != "" && !storedName(r.Record.Value) {
				fe.Problems = append(fe.Problems, fmt.Sprintf("%d:%d: group %q, rule %d: record %q would be stored under another name; use a name of [a-zA-Z0-9:] runs joined by single underscores, e.g. %q",
					r.Record.Line, r.Record.Column, g.Name, i+1, r.Record.Value, suggestName(r.Record.Value)))
			}
			for _, k := range sortedKeys(r.Labels) {
				if !storedLabel(k) {
					line, col := r.Expr.Line, r.Expr.Column
					fe.Problems = append(fe.Problems, fmt.Sprintf("%d:%d: group %q, rule %d: label %q would be stored under another name; use [a-zA-Z0-9] runs joined by single underscores", line, col, g.Name, i+1, k))
				}
			}
		}
	}
	if len(fe.Problems) > 0 {
		return fe
	}
	return nil
}

// suggestName is the name the store would keep.
func suggestName(name string) string {
	parts := strings.FieldsFunc(name, func(r rune) bool {
		return !((r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == ':')
	})
	return strings.Join(parts, "_")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// fileStamp says whether a file changed: size, mtime and a content hash
// (an edit within one mtime tick still counts).
type fileStamp struct {
	size  int64
	mtime int64
	hash  uint64
}

func stampFiles(files []string) map[string]fileStamp {
	out := make(map[string]fileStamp, len(files))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			out[f] = fileStamp{size: -1}
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			out[f] = fileStamp{size: -1}
			continue
		}
		h := fnv.New64a()
		_, _ = h.Write(b)
		out[f] = fileStamp{size: st.Size(), mtime: st.ModTime().UnixNano(), hash: h.Sum64()}
	}
	return out
}

func sameStamps(a, b map[string]fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
