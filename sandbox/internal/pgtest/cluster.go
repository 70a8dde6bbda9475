package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Deadlines of the cluster's life. pg_ctl's own timeouts in the watchdog are shorter than
// stopTimeout, so that pg_ctl says what it waited for.
const (
	initdbTimeout = 60 * time.Second
	startTimeout  = 30 * time.Second
	stopTimeout   = 45 * time.Second // the watchdog's fast stop (20 s), then immediate stop (10 s)
)

// settings make the cluster fast, not durable: it is a throwaway cluster for tests, removed when
// the test binary ends, so nothing in it needs to survive a crash of the machine. Never copy them
// to a server whose data matters.
const settings = `
# pgtest: a throwaway cluster for tests; durability is off on purpose.
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
# Each parallel test holds its own connections (a pool per test).
max_connections = 300
`

// watchdogScript stops the cluster and removes its directory once its stdin reaches EOF, which
// happens when the test binary closes the pipe (Main) or exits in any way at all: a signal, a
// panic, go test's -timeout, SIGKILL. It runs in its own session, so a Ctrl-C meant for the tests
// does not reach it. $1 is pg_ctl, $2 the cluster's directory. When the stop fails it keeps the
// directory, whose logs say why, and exits 1.
const watchdogScript = `read -r _
if [ -f "$2/data/postmaster.pid" ]; then
  "$1" stop -D "$2/data" -m fast -w -t 20 >>"$2/stop.log" 2>&1 ||
    "$1" stop -D "$2/data" -m immediate -w -t 10 >>"$2/stop.log" 2>&1 ||
    exit 1
fi
rm -rf "$2"
`

// cluster is a PostgreSQL cluster that pgtest started: data/, the unix socket and the logs live
// in dir.
type cluster struct {
	binDir     string
	dir        string
	port       int
	cred       *syscall.Credential // the postgres user's, when we run as root; nil otherwise
	watchdog   *exec.Cmd
	release    *os.File      // the write end of the watchdog's stdin
	exited     chan struct{} // closed when the server has exited (and been reaped); nil before it starts
	exitErr    error         // how it exited, once exited is closed
	initdbTook time.Duration
	startTook  time.Duration
}

// startCluster creates and starts a cluster. On error nothing is left running or on disk.
func startCluster() (*cluster, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(baseDir(), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: create the cluster's directory: %w", err)
	}
	c := &cluster{binDir: binDir, dir: dir, cred: cred}
	if cred != nil {
		// initdb and the server run as the postgres user, who must own the directory.
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: give %s to the postgres user: %w", dir, err)
		}
	}
	// The watchdog starts before the server, so that from here on any failure, or the test
	// binary's death, still removes what was made.
	if err := c.startWatchdog(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.initdb(); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	if err := c.start(); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return c, nil
}

// baseDir is where the cluster's directory goes: /dev/shm, a RAM disk, when it has room, else the
// temp dir. Even with fsync off, creating the data files on a disk made initdb two to three times
// slower (0.6 s against 1.5 s) and CREATE DATABASE twenty times slower (20 ms against 380 ms) on
// our CI machine, and every test creates a database. 1 GiB leaves room for a cluster (40 MB) and
// a database (8 MB) for each of many parallel tests; Docker's 64 MB /dev/shm does not qualify.
func baseDir() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Bavail*uint64(st.Bsize) >= 1<<30 {
		return "/dev/shm"
	}
	return os.TempDir()
}

// findBinDir finds initdb and pg_ctl: on PATH (most systems), else in Debian's versioned
// directories, which are not on PATH, taking the highest version.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(p); isFile(filepath.Join(dir, "pg_ctl")) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if dir := highestBinDir(dirs); dir != "" {
		return dir, nil
	}
	return "", errNoBinaries
}

// highestBinDir picks, of dirs such as /usr/lib/postgresql/15/bin, the highest version that has
// initdb and pg_ctl; "" if none has.
func highestBinDir(dirs []string) string {
	best, bestVersion := "", []int(nil)
	for _, dir := range dirs {
		if !isFile(filepath.Join(dir, "initdb")) || !isFile(filepath.Join(dir, "pg_ctl")) {
			continue
		}
		// "10" sorts before "9.6" as text, so compare the numbers.
		var version []int
		for part := range strings.SplitSeq(filepath.Base(filepath.Dir(dir)), ".") {
			n, _ := strconv.Atoi(part)
			version = append(version, n)
		}
		if best == "" || slices.Compare(version, bestVersion) > 0 {
			best, bestVersion = dir, version
		}
	}
	return best
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

// serverCredential is who initdb and the server run as: initdb refuses to run as root, so as root
// they run as the postgres system user (the one Debian's package creates), as runuser would.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: the tests run as root, as which initdb refuses to run, and there is no "+
			"postgres user to run it as (Debian's postgresql package creates one): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: the postgres user's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: the postgres user's gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *cluster) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pgtest: watchdog pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgtest-watchdog", filepath.Join(c.binDir, "pg_ctl"), c.dir)
	cmd.Dir = c.dir
	cmd.Stdin = r // stdout and stderr are /dev/null: a pipe to us would break when we exit
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("pgtest: start the watchdog: %w", err)
	}
	c.watchdog, c.release = cmd, w
	return nil
}

func (c *cluster) initdb() error {
	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	began := time.Now()
	// --no-sync: nothing of a throwaway cluster needs to reach the disk.
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "initdb"), "-D", filepath.Join(c.dir, "data"),
		"-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	// In the cluster's directory: the postgres user may not be allowed into the test's.
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("did not finish within %v: %w", initdbTimeout, err)
		}
		return fmt.Errorf("pgtest: initdb in %s: %w\n--- initdb output ---\n%s", c.dir, err, tail(out))
	}
	c.initdbTook = time.Since(began)

	// Appended, so these settings win over initdb's.
	conf := filepath.Join(c.dir, "data", "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: open %s: %w", conf, err)
	}
	_, err = fmt.Fprintf(f, "%sunix_socket_directories = '%s'\n", settings, c.dir)
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("pgtest: write %s: %w", conf, err)
	}
	return nil
}

// start starts the server on a free loopback port and waits until it accepts connections. The
// server is our child, not pg_ctl's daemon, so that we see at once when it exits early and reap it
// when it stops. Another process may take the port between our probe and the server's bind, so a
// server that fails to bind is started again on a new port.
func (c *cluster) start() error {
	began := time.Now()
	logPath := filepath.Join(c.dir, "server.log")
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.port = port
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("pgtest: open the server log: %w", err)
		}
		cmd := exec.Command(filepath.Join(c.binDir, "postgres"), "-D", filepath.Join(c.dir, "data"), "-p", strconv.Itoa(port))
		cmd.Dir = c.dir
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// Its own session: a Ctrl-C meant for the tests must not stop the server under them; the
		// watchdog stops it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setsid: true}
		err = cmd.Start()
		logFile.Close()
		if err != nil {
			return fmt.Errorf("pgtest: start postgres: %w", err)
		}
		c.exited = make(chan struct{})
		go func(exited chan struct{}) {
			c.exitErr = cmd.Wait()
			close(exited)
		}(c.exited)

		err = c.waitReady()
		if err == nil {
			c.startTook = time.Since(began)
			return nil
		}
		select {
		case <-c.exited: // only a server that has gone is started again
			if attempt < 3 && strings.Contains(c.logTail(), "could not bind") {
				continue
			}
		default:
		}
		return fmt.Errorf("%w%s", err, c.logTail())
	}
}

// waitReady waits until the server accepts a connection, it exits, or startTimeout passes.
func (c *cluster) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.url().String())
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-c.exited:
			return fmt.Errorf("pgtest: PostgreSQL exited while starting on 127.0.0.1:%d: %w", c.port, c.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: waited %v for PostgreSQL on 127.0.0.1:%d to accept connections: %w", startTimeout, c.port, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// url is the admin URL: the superuser that initdb made, over TCP, which trust lets in.
func (c *cluster) url() *url.URL {
	return &url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
}

// stop lets the watchdog stop the server and remove the directory, and waits for it: the same code
// that cleans up after a killed test binary runs at every normal end.
func (c *cluster) stop() error {
	c.release.Close()
	timeout := time.After(stopTimeout)
	done := make(chan error, 1)
	go func() { done <- c.watchdog.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("pgtest: stop the cluster in %s (kept for a look): %w\n--- pg_ctl stop output ---\n%s%s",
				c.dir, err, tail(readFile(filepath.Join(c.dir, "stop.log"))), c.logTail())
		}
	case <-timeout:
		return fmt.Errorf("pgtest: waited %v for the watchdog to stop the cluster in %s%s", stopTimeout, c.dir, c.logTail())
	}
	// pg_ctl stop returns once the server has gone; reaping it here leaves no zombie behind.
	if c.exited != nil {
		select {
		case <-c.exited:
		case <-timeout:
			return fmt.Errorf("pgtest: waited %v for the PostgreSQL server of %s to exit", stopTimeout, c.dir)
		}
	}
	return nil
}

// logTail is the end of the server's log, to append to an error; empty for a server of EnvURL's.
func (c *cluster) logTail() string {
	if c == nil {
		return ""
	}
	b := readFile(filepath.Join(c.dir, "server.log"))
	if len(b) == 0 {
		return ""
	}
	return "\n--- server log (" + filepath.Join(c.dir, "server.log") + ") ---\n" + tail(b)
}

func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// tail keeps the last lines of a log: where the reason for a failure is, without flooding the
// test's output.
func tail(b []byte) string {
	const maxLines, maxBytes = 40, 4000
	b = bytes.TrimRight(b, "\n")
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
