package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/internal/invalid"
)

// Bounds of include: files it may bring in, and targets in all the files
// together (the including one too). Each file is held to the same 16 MiB as
// the including one.
const (
	MaxIncludeFiles = 10000
	MaxTargets      = 1000000
)

// targetsOnly is all an included file may hold.
type targetsOnly struct {
	Targets []Target `yaml:"targets"`
}

// includedFile is one file include brought in and where its targets went
// in Config.Targets.
type includedFile struct {
	name  string // the pattern's match: relative to the working directory or absolute
	first int    // index of its first target in Config.Targets
	n     int
}

// readIncludes appends the targets of every file c.Include matches to
// c.Targets, in the order of the patterns and, within one, of the names.
// Patterns are relative to dir, the including file's directory; self (that
// file) and a file two patterns match are read once. A pattern without
// wildcards must match a file; one with them may match none.
func (c *Config) readIncludes(dir, self string) error {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{filepath.Clean(self): true}
	var files []string
	for i, pat := range c.Include {
		p := fmt.Sprintf("include[%d]", i)
		if strings.TrimSpace(pat) == "" {
			add(p, "is empty")
			continue
		}
		full := pat
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, full)
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			add(p, "%q is not a valid pattern: %v", pat, err)
			continue
		}
		if len(matches) == 0 && !strings.ContainsAny(pat, `*?[\`) {
			add(p, "%s: no such file", full)
			continue
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				files = append(files, m)
			}
		}
		if len(files) > MaxIncludeFiles {
			add(p, "the patterns up to this one match %d files, more than %d", len(files), MaxIncludeFiles)
			break
		}
	}
	if len(errs) > 0 {
		return &Error{Source: self, Errors: errs}
	}

	lists, err := readTargetFiles(files)
	if err != nil {
		return err
	}
	total := len(c.Targets)
	for _, l := range lists {
		total += len(l)
	}
	if total > MaxTargets {
		return &Error{Source: self, Errors: []invalid.Field{{Path: "include",
			Msg: fmt.Sprintf("the config and its included files hold %d targets, more than %d", total, MaxTargets)}}}
	}
	c.Targets = append(make([]Target, 0, total), c.Targets...)
	for i, l := range lists {
		c.included = append(c.included, includedFile{name: files[i], first: len(c.Targets), n: len(l)})
		c.Targets = append(c.Targets, l...)
	}
	return nil
}

// readTargetFiles decodes files (strictly) on every core; the error
// returned is that of the first failing file in the order given.
func readTargetFiles(files []string) ([][]Target, error) {
	lists := make([][]Target, len(files))
	errs := make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Go(func() {
			for i := range next {
				lists[i], errs[i] = readTargetFile(files[i])
			}
		})
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	return lists, firstError(errs)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func readTargetFile(name string) ([]Target, error) {
	data, err := readLimited(name)
	if err != nil {
		return nil, err
	}
	var f targetsOnly
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		fields, fatal := decodeProblems(err, data, reflect.TypeFor[targetsOnly]())
		if fatal != nil {
			return nil, fmt.Errorf("config %s: %w", name, fatal)
		}
		return nil, &Error{Source: name, Errors: fields}
	}
	return f.Targets, nil
}

// readLimited reads a regular file of at most maxConfigFileBytes.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config %s: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	if len(data) > maxConfigFileBytes {
		return nil, fmt.Errorf("config %s: larger than %d bytes", name, maxConfigFileBytes)
	}
	return data, nil
}

// fileOf is the included file Targets[i] came from, or nil for a target
// of the including file.
func (c *Config) fileOf(i int) *includedFile {
	k := sort.Search(len(c.included), func(k int) bool { return c.included[k].first+c.included[k].n > i })
	if k == len(c.included) || i < c.included[k].first {
		return nil
	}
	return &c.included[k]
}

// TargetPath names Targets[i] where it is written: "targets[3]" in the
// config file itself, "targets[3] in targets.d/eu.yaml" in an included one.
func (c *Config) TargetPath(i int) string {
	if f := c.fileOf(i); f != nil {
		return fmt.Sprintf("targets[%d] in %s", i-f.first, f.name)
	}
	return fmt.Sprintf("targets[%d]", i)
}

// locate rewrites the paths of errors in included files' targets to name
// the file, the line and the target's index in that file
// ("targets.d/eu.yaml:12: targets[3].http.url"). Lines are looked up only
// here, for the files that have errors: a valid config never pays for them.
func (c *Config) locate(errs []invalid.Field) []invalid.Field {
	if len(c.included) == 0 {
		return errs
	}
	trees := map[string]*yaml.Node{}
	for k := range errs {
		i, rest, ok := targetIndex(errs[k].Path)
		if !ok {
			continue
		}
		f := c.fileOf(i)
		if f == nil {
			continue
		}
		root, ok := trees[f.name]
		if !ok {
			root = parseTree(f.name)
			trees[f.name] = root
		}
		local := i - f.first
		where := f.name
		if line := lineOf(root, local, rest); line > 0 {
			where += ":" + strconv.Itoa(line)
		}
		errs[k].Path = fmt.Sprintf("%s: targets[%d]%s", where, local, rest)
	}
	return errs
}

// targetIndex splits "targets[12].http.url" into 12 and ".http.url".
func targetIndex(path string) (int, string, bool) {
	rest, ok := strings.CutPrefix(path, "targets[")
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, "", false
	}
	i, err := strconv.Atoi(num)
	return i, rest, err == nil
}

// parseTree reads name as a YAML node tree, or nil if it no longer can.
func parseTree(name string) *yaml.Node {
	data, err := readLimited(name)
	if err != nil {
		return nil
	}
	var n yaml.Node
	if yaml.Unmarshal(data, &n) != nil {
		return nil
	}
	return &n
}

// lineOf is the line of the field at path (".http.headers[0]", "" for the
// target itself) in the i-th target of a targets file, or of the deepest
// part of it that is written there (a defaulted field is not); 0 if the
// target is not found.
func lineOf(root *yaml.Node, i int, path string) int {
	if root == nil || root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return 0
	}
	list := child(root.Content[0], "targets")
	if list == nil || list.Kind != yaml.SequenceNode || i >= len(list.Content) {
		return 0
	}
	n := list.Content[i]
	for _, seg := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		name, idx, _ := strings.Cut(seg, "[")
		if name != "" {
			c := child(n, name)
			if c == nil {
				return n.Line
			}
			n = c
		}
		for idx != "" {
			num, more, _ := strings.Cut(idx, "]")
			j, err := strconv.Atoi(num)
			if err != nil || n.Kind != yaml.SequenceNode || j < 0 || j >= len(n.Content) {
				return n.Line
			}
			n = n.Content[j]
			idx = strings.TrimPrefix(more, "[")
		}
	}
	return n.Line
}

// child is the value of key in mapping n, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for k := 0; k+1 < len(n.Content); k += 2 {
		if n.Content[k].Value == key {
			return n.Content[k+1]
		}
	}
	return nil
}
