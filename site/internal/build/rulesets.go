package build

import (
	"errors"
	"fmt"
	"io/fs"
)

// rulesetFiles publishes Config.Rulesets verbatim under rulesets/: the async
// Spectral ruleset, its functions and its test specs, so that
// `spectral lint --ruleset <site>/rulesets/async-api.yaml` works (Spectral
// fetches the functions relative to the ruleset's URL). Pages link to them
// as /rulesets/…, and the link check then proves each download is there.
func (b *builder) rulesetFiles() error {
	if b.cfg.Rulesets == nil {
		return nil
	}
	err := fs.WalkDir(b.cfg.Rulesets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(b.cfg.Rulesets, name)
		if err != nil {
			return err
		}
		out := "rulesets/" + name
		if _, ok := b.files[out]; ok {
			return fmt.Errorf("%s is built twice", out)
		}
		b.files[out] = data
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		b.log.Warn("no rulesets folder: the site publishes no Spectral ruleset")
		return nil
	}
	if err != nil {
		return fmt.Errorf("rulesets: %w", err)
	}
	return nil
}
