package markdown

import (
	"fmt"
	"strings"
)

// fenceInfo is a parsed info string: ```go include=a/b.go#loop tab="Go".
type fenceInfo struct {
	lang  string
	attrs map[string]string
}

// parseFence splits the info string into the language (first word) and
// key=value attributes; values may be double-quoted. A bare word after the
// language is an error, so typos do not pass silently.
func parseFence(info string) (fenceInfo, error) {
	fi := fenceInfo{attrs: map[string]string{}}
	s := strings.TrimSpace(info)
	first := true
	for s != "" {
		i := strings.IndexAny(s, " \t=")
		if i < 0 {
			i = len(s)
		}
		key := s[:i]
		s = s[i:]
		if !strings.HasPrefix(s, "=") {
			if first && !strings.Contains(key, "=") {
				fi.lang = key
				first = false
				s = strings.TrimSpace(s)
				continue
			}
			return fi, fmt.Errorf("fence attribute %q has no value (want key=value)", key)
		}
		first = false
		s = s[1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return fi, fmt.Errorf("fence attribute %s: unclosed quote", key)
			}
			val, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if _, dup := fi.attrs[key]; dup {
			return fi, fmt.Errorf("fence attribute %s given twice", key)
		}
		fi.attrs[key] = val
		s = strings.TrimSpace(s)
	}
	for k := range fi.attrs {
		switch k {
		case "include", "tab", "title", "desc", "states":
		case "operation", "scenario":
			if fi.lang != "tryit" {
				return fi, fmt.Errorf("fence attribute %s is only for tryit blocks", k)
			}
		default:
			return fi, fmt.Errorf("unknown fence attribute %q (known: include, tab, title, desc, states; operation and scenario for tryit)", k)
		}
	}
	return fi, nil
}
