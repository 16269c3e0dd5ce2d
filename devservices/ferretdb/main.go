// Command ferretdb-dev runs an embedded FerretDB v1 (MongoDB wire protocol, SQLite backend)
// for local development and tests. It exists because `go install .../cmd/ferretdb@v1.24.x`
// panics at start-up: the module zip lacks build/version/version.txt. Embedding the public
// package github.com/FerretDB/FerretDB/ferretdb from our own module avoids that code path.
//
// By default FerretDB itself listens on an ephemeral loopback port and clients talk to it
// through a proxy (proxy.go) that runs write commands one at a time, which gives the
// per-document atomicity MongoDB guarantees and FerretDB v1 lacks. -serialize-writes=false
// exposes FerretDB directly.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	addr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "", "directory for the SQLite files (created if missing)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	serialize := flag.Bool("serialize-writes", true, "run write commands one at a time (see proxy.go)")
	flag.Parse()

	if err := run(*addr, *dataDir, *logLevel, *serialize); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-dev:", err)
		os.Exit(1)
	}
}

func run(addr, dataDir, logLevel string, serialize bool) error {
	if dataDir == "" {
		return fmt.Errorf("-data-dir is required")
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("bad -log-level: %w", err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}

	if err = os.MkdirAll(abs, 0o755); err != nil {
		return err
	}

	ferretAddr := addr
	if serialize {
		ferretAddr = "127.0.0.1:0"
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: ferretAddr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/", // must be an existing directory; the slash matters
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// MongoDBURI must not be called before Run has started the listener.
	uri := f.MongoDBURI()

	if !serialize {
		fmt.Fprintf(os.Stderr, "ferretdb-dev: serving %s (sqlite data in %s)\n", uri, abs)
		return <-done
	}

	u, err := url.Parse(uri)
	if err != nil {
		stop()
		<-done
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		stop()
		<-done
		return err
	}

	p := &proxy{backend: u.Host, logger: logger}
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- p.serve(ln) }()

	fmt.Fprintf(os.Stderr, "ferretdb-dev: serving mongodb://%s/ (writes serialized; FerretDB on %s; sqlite data in %s)\n",
		ln.Addr(), u.Host, abs)

	select {
	case <-ctx.Done():
	case err = <-proxyDone:
		stop()
	}
	ln.Close()
	<-done

	return err
}
