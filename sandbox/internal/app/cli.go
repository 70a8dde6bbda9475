package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/telemetry"
)

const usage = `Accepted sandbox: a live API that implements asynchronous 202 Accepted flows.

Usage:
  sandbox serve [flags]          serve the API (and, with -site-dir, the docs site)
  sandbox migrate [-database D]  apply the database migrations, then exit
  sandbox openapi [-out DIR]     write the spec and the error catalog to DIR
  sandbox help                   show this text

Run 'sandbox serve -h', 'sandbox migrate -h' or 'sandbox openapi -h' for the flags.
`

// Main runs the command in args and returns the process exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], getenv, stderr)
	case "migrate":
		err = migrate(ctx, args[1:], getenv, stdout, stderr)
	case "openapi":
		err = openapi(args[1:], getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sandbox: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sandbox %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	envErr := bindFlags(fs, &cfg, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	site, err := siteFS(cfg.SiteDir)
	if err != nil {
		return err
	}
	log := NewLogger(stderr, cfg)
	unlock, err := lockDatabase(cfg.Database)
	if err != nil {
		return err
	}
	defer unlock()
	db, err := openMigrated(ctx, cfg.Database, cfg.Migrate, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Warn("closing the database", "err", err)
		}
	}()
	tracing, err := telemetry.FromEnv(ctx, getenv, stderr, Version)
	if err != nil {
		return err
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(flush); err != nil {
			log.Warn("sending the last spans", "err", err)
		}
	}()
	if tracing.Exporter != "none" {
		log.Info("tracing", "exporter", tracing.Exporter)
	}
	s, err := New(cfg, Deps{DB: db, Logger: log, Site: site, Tracing: tracing})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	return s.Run(ctx, ln)
}

// openMigrated opens the database, says where it is, and migrates it (or,
// with apply false, checks that it is migrated).
func openMigrated(ctx context.Context, name string, apply bool, log *slog.Logger) (sqldb.DB, error) {
	db, err := OpenDatabase(ctx, name, log.With("component", "database"), time.Now)
	if err != nil {
		return nil, err
	}
	log.Info("database", "at", db.Describe())
	res, err := db.Migrate(ctx, apply)
	if err != nil {
		_ = db.Close()
		if errors.Is(err, sqldb.ErrNotMigrated) {
			return nil, fmt.Errorf("%w (or start serve with -migrate)", err)
		}
		return nil, err
	}
	if len(res.River)+len(res.App) > 0 {
		log.Info("database migrated", "river_applied", res.River, "river_version", res.RiverVersion, "sandbox_applied", res.App, "sandbox_version", res.AppVersion)
	}
	return db, nil
}

// migrate applies the migrations for operators who run them apart from
// serve (before a deploy of many replicas, say).
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	envErr := bindFlags(fs, &cfg, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	if cfg.Database == "memory" {
		return errors.New("-database memory: a database that ends with the process cannot be migrated ahead of time")
	}
	log := NewLogger(stderr, cfg)
	db, err := openMigrated(ctx, cfg.Database, true, log)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrated", db.Describe())
	return db.Close()
}

// Files the openapi command writes, and so what generated/ holds.
const (
	SpecJSON   = "openapi.json"
	SpecYAML   = "openapi.yaml"
	Spec30JSON = "openapi-3.0.json"
	ErrorsJSON = "errors.json"
)

func openapi(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("openapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "generated", "`directory` to write "+SpecJSON+", "+SpecYAML+", "+Spec30JSON+" and "+ErrorsJSON+" to")
	var cfg Config
	envErr := bindFlags(fs, &cfg, func(string) string { return "" })
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	files, err := Artifacts(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	for _, name := range []string{SpecJSON, SpecYAML, Spec30JSON, ErrorsJSON} {
		p := filepath.Join(*out, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		fmt.Fprintln(stdout, "wrote", p)
	}
	return nil
}

// Artifacts renders what generated/ holds, from a sandbox built with cfg's
// defaults (on a throwaway database it never touches): the same bytes
// every time for the same code.
func Artifacts(cfg Config) (map[string][]byte, error) {
	db, err := OpenDatabase(context.Background(), "memory", nil, time.Now)
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	s, err := New(cfg, Deps{DB: db})
	if err != nil {
		return nil, err
	}
	oapi := s.API().OpenAPI()
	spec, err := indentJSON(oapi.MarshalJSON())
	if err != nil {
		return nil, fmt.Errorf("rendering the spec: %w", err)
	}
	yml, err := oapi.YAML()
	if err != nil {
		return nil, fmt.Errorf("rendering the YAML spec: %w", err)
	}
	down, err := oapi.Downgrade()
	if err != nil {
		return nil, fmt.Errorf("downgrading the spec to 3.0: %w", err)
	}
	down, err = withoutWebhooks(down)
	if err != nil {
		return nil, err
	}
	if down, err = wrapRefSiblings(down); err != nil {
		return nil, err
	}
	catalog, err := indentJSON(json.Marshal(s.Catalog()))
	if err != nil {
		return nil, fmt.Errorf("rendering the error catalog: %w", err)
	}
	return map[string][]byte{SpecJSON: spec, SpecYAML: yml, Spec30JSON: down, ErrorsJSON: catalog}, nil
}

// withoutWebhooks removes the top-level `webhooks` that Huma's Downgrade
// keeps, since OpenAPI 3.0 has no such field.
func withoutWebhooks(spec []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("reading the 3.0 spec: %w", err)
	}
	delete(doc, "webhooks")
	return indentJSON(json.Marshal(doc))
}

// wrapRefSiblings rewrites every schema that has keywords beside a $ref
// ({"$ref": X, "description": D}) as {"allOf": [{"$ref": X}], "description": D}
// in the 3.0 spec. OpenAPI 3.1 allows siblings of $ref, and Huma writes the
// doc of a struct field there; OpenAPI 3.0 ignores them (so a 3.0 reader
// loses the description), and linters (Spectral's no-$ref-siblings) refuse
// them. Keys keep their order, so the file stays diffable.
func wrapRefSiblings(spec []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.UseNumber()
	var out bytes.Buffer
	if err := rewriteJSON(dec, &out); err != nil {
		return nil, fmt.Errorf("rewriting $ref siblings in the 3.0 spec: %w", err)
	}
	return indentJSON(out.Bytes(), nil)
}

// rewriteJSON copies one JSON value from dec to out, wrapping $ref siblings.
func rewriteJSON(dec *json.Decoder, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		out.WriteByte('[')
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := rewriteJSON(dec, out); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		out.WriteByte(']')
		return err
	case json.Delim('{'):
		type member struct {
			key string
			val []byte
		}
		var members []member
		ref := -1
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			var v bytes.Buffer
			if err := rewriteJSON(dec, &v); err != nil {
				return err
			}
			if k == "$ref" {
				ref = len(members)
			}
			members = append(members, member{k.(string), v.Bytes()})
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		if ref >= 0 && len(members) > 1 {
			members[ref] = member{"allOf", append(append([]byte(`[{"$ref":`), members[ref].val...), "}]"...)}
		}
		out.WriteByte('{')
		for i, m := range members {
			if i > 0 {
				out.WriteByte(',')
			}
			k, _ := json.Marshal(m.key)
			out.Write(k)
			out.WriteByte(':')
			out.Write(m.val)
		}
		out.WriteByte('}')
		return nil
	}
	v, err := json.Marshal(tok)
	out.Write(v)
	return err
}

func indentJSON(data []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
