// Command site builds the Accepted documentation site and serves a built
// copy for previews.
//
//	go run ./site build [flags]   write the static site (default generated/site)
//	go run ./site serve [flags]   serve a built site on 127.0.0.1:8081
//
// Run "go run ./site build -h" or "go run ./site serve -h" for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/accepted-dev/accepted/site/internal/build"
	"github.com/accepted-dev/accepted/site/internal/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Stderr, log); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "site:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: go run ./site <command> [flags]

commands:
  build   build the static site from content/, generated/, examples/ and rulesets/
  serve   serve a built site with the production headers (CSP), for previews

Run "go run ./site <command> -h" for a command's flags.
`

func run(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "build":
		return runBuild(ctx, args[1:], stderr, log)
	case "serve":
		return runServe(ctx, args[1:], stderr, log)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func runBuild(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	fl := flag.NewFlagSet("build", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("out", "generated/site", "directory to write the site into (replaced if it holds an earlier build)")
	contentDir := fl.String("content", "content", "directory of Markdown pages with YAML front matter")
	generated := fl.String("generated", "generated", "directory holding openapi.json and errors.json")
	examples := fl.String("examples", "examples", `directory that include="examples/…" paths in the Markdown refer to`)
	rulesets := fl.String("rulesets", "rulesets", "directory published verbatim under rulesets/ (the Spectral ruleset and its functions)")
	baseURL := fl.String("base-url", "/", "URL path the site is served under")
	siteURL := fl.String("site-url", "http://localhost:8080", "scheme and host of the published site, for sitemap.xml and robots.txt")
	sandboxURL := fl.String("sandbox-url", "", `sandbox origin for try-it, written to <meta name="accepted-sandbox">; empty means the site's own origin`)
	fl.Usage = func() {
		fmt.Fprint(stderr, "usage: go run ./site build [flags]\n\nBuilds the static site; fails on a bad page, a missing include, a broken link or markup that breaks the CSP.\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	// Pages are written as they render, so the live heap stays small (about
	// 12 MB for 1,000 pages) and the default GOGC=100 would collect some 200
	// times in one build: a quarter more CPU than when the pages were held
	// to the end. Collecting at three times the live heap instead brings
	// the CPU time back to within about 10 % of that, for about 15 MB more
	// peak memory (make bench-site-memory). GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	start := time.Now()
	site, err := build.Build(ctx, build.Config{
		Content:    os.DirFS(*contentDir),
		Generated:  os.DirFS(*generated),
		Examples:   os.DirFS(*examples),
		Rulesets:   os.DirFS(*rulesets),
		BaseURL:    *baseURL,
		SiteURL:    *siteURL,
		SandboxURL: *sandboxURL,
		Logger:     log,
		// Each page is written as it renders, not held to the end.
		Out: *out,
	})
	if err != nil {
		return err
	}
	log.Info("wrote site", "dir", *out, "pages", len(site.Pages), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func runServe(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "127.0.0.1:8081", "address to listen on")
	dir := fl.String("dir", "generated/site", "directory of a built site")
	sandboxURL := fl.String("sandbox-url", "", "origin of a sandbox on another origin, allowed in the CSP as connect-src (the site must be built with the same -sandbox-url)")
	fl.Usage = func() {
		fmt.Fprint(stderr, "usage: go run ./site serve [flags]\n\nServes a built site with Content-Security-Policy: default-src 'self', for previews.\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*dir); err != nil {
		return fmt.Errorf("serve: %w (run go run ./site build first)", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	var connect []string
	if *sandboxURL != "" {
		connect = append(connect, strings.TrimSuffix(*sandboxURL, "/"))
	}
	srv := &http.Server{Handler: serve.Handler(os.DirFS(*dir), connect...), ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving site", "url", "http://"+ln.Addr().String()+"/", "dir", *dir)
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
