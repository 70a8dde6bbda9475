package markdown

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// markerRE matches a region marker line in any comment syntax:
// "// region loop", "# endregion loop", "<!-- region x -->", "-- region x".
var markerRE = regexp.MustCompile(`^\s*(?://|#|--|;|/\*|<!--|\*)\s*(end)?region\s+([A-Za-z0-9_.-]+)\b`)

// readInclude returns the text of spec ("examples/go/x.go#loop").
func readInclude(fsys fs.FS, prefix, spec string) (code, file string, err error) {
	file, region, _ := strings.Cut(spec, "#")
	if !strings.HasPrefix(file, prefix) {
		return "", file, fmt.Errorf("include %q: path must start with %q", spec, prefix)
	}
	name := path.Clean(strings.TrimPrefix(file, prefix))
	if !fs.ValidPath(name) {
		return "", file, fmt.Errorf("include %q: invalid path", spec)
	}
	if fsys == nil {
		return "", file, fmt.Errorf("include %q: no examples directory configured", spec)
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", file, fmt.Errorf("include %q: file %s does not exist", spec, file)
		}
		return "", file, fmt.Errorf("include %q: %w", spec, err)
	}
	code, err = extractRegion(string(data), region)
	if err != nil {
		return "", file, fmt.Errorf("include %q: %w", spec, err)
	}
	return code, file, nil
}

// extractRegion returns the lines between "region name" and "endregion name"
// (the whole text if name is ""), without any marker lines and with the
// common indentation removed.
func extractRegion(src, name string) (string, error) {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var out []string
	inside, found, closed := name == "", false, false
	for _, l := range lines {
		m := markerRE.FindStringSubmatch(l)
		if m != nil {
			if m[2] == name && name != "" {
				if m[1] == "" {
					if found {
						return "", fmt.Errorf("region %q opened twice", name)
					}
					inside, found = true, true
				} else {
					if !inside {
						return "", fmt.Errorf("endregion %q before its region", name)
					}
					inside, closed = false, true
				}
			}
			continue
		}
		if inside {
			out = append(out, l)
		}
	}
	if name != "" && !found {
		return "", fmt.Errorf("region %q not found", name)
	}
	if name != "" && !closed {
		return "", fmt.Errorf("region %q has no endregion", name)
	}
	for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	for len(out) > 0 && strings.TrimSpace(out[0]) == "" {
		out = out[1:]
	}
	return dedent(out) + "\n", nil
}

func dedent(lines []string) string {
	prefix := ""
	first := true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ws := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = ws, false
			continue
		}
		for !strings.HasPrefix(ws, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, prefix)
	}
	return strings.Join(lines, "\n")
}

// langForFile guesses a chroma lexer name from a file extension.
func langForFile(file string) string {
	switch path.Ext(file) {
	case ".go":
		return "go"
	case ".js", ".mjs", ".cjs":
		return "javascript"
	case ".ts":
		return "typescript"
	case ".py":
		return "python"
	case ".sh", ".bash":
		return "bash"
	case ".json":
		return "json"
	case ".yaml", ".yml":
		return "yaml"
	case ".html":
		return "html"
	}
	return ""
}
