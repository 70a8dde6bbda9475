// Command sandbox serves the Accepted sandbox API (and optionally the docs
// site) and writes its OpenAPI spec. Everything but signal handling lives in
// sandbox/internal/app.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/accepted-dev/accepted/sandbox/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
