package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/stdlib"
)

// A run directory keeps the source its model was compiled from: the
// model file and every file it imports, standard library files included,
// in SourceDir, with an index that maps each file's name as the compiler
// loaded it (absolute, or std/…) to its copy. attnc eval, predict and
// train -resume compile the copy, so an edit of the .attn file after the
// run started changes nothing about the run, and they say when the
// original differs.
const (
	SourceDir   = "source"
	sourceIndex = "index.json"
)

// sourceSnapshot is index.json: the root file's name and, for each file,
// the name of its copy in SourceDir.
type sourceSnapshot struct {
	Root  string            `json:"root"`
	Files map[string]string `json:"files"`
}

// compileSources is compile, with the names and texts of every file the
// model was loaded from (absolute names, or std/… for the standard
// library), for a run directory's copy.
func (c *cli) compileSources(file, model string, config map[string]string) (*lang.Model, map[string]string, bool) {
	src, err := readSource(file)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc: %v\n", err)
		return nil, nil, false
	}
	prog, diags := lang.Load(file, src, loadOpts)
	if len(diags) > 0 {
		diags.Print(c.stderr, prog.Sources)
		return nil, nil, false
	}
	m, diags := prog.Elaborate(model, lang.ElabOptions{Config: configValuesOf(config)})
	if len(diags) > 0 {
		diags.Print(c.stderr, prog.Sources)
		return nil, nil, false
	}
	// Named as run.json names the model file: absolute (the loader joined
	// imports with the importing file's directory, so relative names are
	// relative to this directory), or std/….
	sources := map[string]string{}
	for name, text := range prog.Sources {
		sources[sourcePath(name)] = text
	}
	return m, sources, true
}

// writeSnapshot copies sources into dir/SourceDir, each file written
// atomically, the index last: a directory without an index is no copy.
func writeSnapshot(dir, root string, sources map[string]string) error {
	sd := filepath.Join(dir, SourceDir)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	snap := sourceSnapshot{Root: root, Files: map[string]string{}}
	used := map[string]bool{sourceIndex: true}
	for _, n := range names {
		// The copy is named after the file, made unique: two imports
		// may share a base name.
		base := filepath.Base(n)
		if strings.HasPrefix(n, lang.StdPrefix) {
			base = "std_" + base
		}
		name := base
		for i := 2; used[name]; i++ {
			name = fmt.Sprintf("%s_%d%s", strings.TrimSuffix(base, filepath.Ext(base)), i, filepath.Ext(base))
		}
		used[name] = true
		snap.Files[n] = name
		if err := writeFileAtomic(filepath.Join(sd, name), []byte(sources[n])); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(sd, sourceIndex), append(b, '\n'))
}

// readSnapshot returns the copy of a run's source, or nil when the run
// has none (it started before runs kept one).
func readSnapshot(dir string) (*sourceSnapshot, map[string]string, error) {
	sd := filepath.Join(dir, SourceDir)
	b, err := lang.ReadSourceFile(filepath.Join(sd, sourceIndex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var snap sourceSnapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", filepath.Join(sd, sourceIndex), err)
	}
	if _, ok := snap.Files[snap.Root]; !ok || snap.Root == "" {
		return nil, nil, fmt.Errorf("%s: the model file %q has no copy", filepath.Join(sd, sourceIndex), snap.Root)
	}
	texts := map[string]string{}
	for name, copyName := range snap.Files {
		if copyName != filepath.Base(copyName) || copyName == sourceIndex {
			return nil, nil, fmt.Errorf("%s: %q is not a file of %s", filepath.Join(sd, sourceIndex), copyName, sd)
		}
		b, err := lang.ReadSourceFile(filepath.Join(sd, copyName))
		if err != nil {
			return nil, nil, fmt.Errorf("the run's copy of %s: %v", name, err)
		}
		texts[name] = string(b)
	}
	return &snap, texts, nil
}

// compileRun compiles the model of the run in dir, as attnc CMD: from the
// run's copy of its source when it has one (saying which original files
// differ from it), else from spec.Source as it is now.
func (c *cli) compileRun(cmd, dir, source, model string, config map[string]string) (*lang.Model, bool) {
	snap, texts, err := readSnapshot(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc %s: %v\n", cmd, err)
		return nil, false
	}
	if snap == nil {
		fmt.Fprintf(c.stderr, "attnc %s: note: %s keeps no copy of its source (it started before runs did); compiling %s as it is now\n", cmd, dir, source)
		models, ok := c.compile(source, model, false, config)
		if !ok {
			return nil, false
		}
		return models[0], true
	}
	std := fstest.MapFS{}
	for name, text := range texts {
		if rest, ok := strings.CutPrefix(name, lang.StdPrefix); ok {
			std[rest] = &fstest.MapFile{Data: []byte(text)}
		}
	}
	opts := lang.LoadOptions{Std: std, ReadFile: func(name string) ([]byte, error) {
		if text, ok := texts[name]; ok {
			return []byte(text), nil
		}
		return nil, fmt.Errorf("%s is not among the files the run was compiled from: %w", name, fs.ErrNotExist)
	}}
	prog, diags := lang.Load(snap.Root, texts[snap.Root], opts)
	if len(diags) > 0 {
		diags.Print(c.stderr, prog.Sources)
		return nil, false
	}
	m, diags := prog.Elaborate(model, lang.ElabOptions{Config: configValuesOf(config)})
	if len(diags) > 0 {
		diags.Print(c.stderr, prog.Sources)
		return nil, false
	}
	if changed := changedSources(texts); len(changed) > 0 {
		fmt.Fprintf(c.stderr, "attnc %s: note: since the run started, %s; using the run's copy in %s\n", cmd, strings.Join(changed, ", "), filepath.Join(dir, SourceDir))
	}
	return m, true
}

// changedSources says, file by file in order, which now differ from the
// copy ("NAME changed") or are gone ("NAME is gone").
func changedSources(texts map[string]string) []string {
	var out []string
	for name, text := range texts {
		var now []byte
		var err error
		if rest, ok := strings.CutPrefix(name, lang.StdPrefix); ok {
			now, err = stdlib.FS.ReadFile(rest)
		} else {
			now, err = lang.ReadSourceFile(name)
		}
		switch {
		case err != nil:
			out = append(out, name+" is gone")
		case !bytes.Equal(bytes.TrimPrefix(now, []byte("\uFEFF")), []byte(text)):
			out = append(out, name+" changed")
		}
	}
	sort.Strings(out)
	return out
}
