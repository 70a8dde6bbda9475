package build

// referencePages renders the API reference under /reference/.
func (b *builder) referencePages() error {
	p := b.newPage("reference/", "API reference", "API reference", "Every operation, webhook and model of the API.")
	p.layout.Breadcrumbs = b.crumbs("", "")
	data, err := readOptional(b.cfg.Generated, "openapi.json")
	if err != nil {
		return err
	}
	if data == nil {
		b.log.Warn("no openapi.json in generated/: the API reference is a placeholder")
		p.layout.Body = placeholder("The API reference has not been generated yet (generated/openapi.json is missing).")
		return nil
	}
	p.layout.Body = placeholder("The API reference is being written.")
	return nil
}
