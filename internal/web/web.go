// Package web is sitegm's read-only HTTP endpoint ([http]): Prometheus
// metrics at /metrics, the status page at / and the status document at
// /status.json. Nothing it serves changes the daemon. It reads the status
// snapshot the daemon publishes each second and the history; the serving
// paths (Sync, Delay_Resp, NTP) never wait on it.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sitegm/internal/history"
	"sitegm/internal/status"
)

// Server serves the endpoint.
type Server struct {
	last func() *status.Status
	hist *history.Store
	reg  *prometheus.Registry
	now  func() time.Time
}

// New serves the snapshots last returns and the history hist.
func New(last func() *status.Status, hist *history.Store) *Server {
	s := &Server{last: last, hist: hist, reg: prometheus.NewRegistry(), now: time.Now}
	s.reg.MustRegister(newCollector(last))
	return s
}

// Handler is the endpoint's routes; anything but GET and HEAD is refused.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 5 * time.Second}))
	mux.HandleFunc("/status.json", s.statusJSON)
	mux.HandleFunc("/", s.page)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) statusJSON(w http.ResponseWriter, r *http.Request) {
	st := s.last()
	if st == nil {
		http.Error(w, "no status yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(st)
}

// maxConns bounds the endpoint's open connections: a management LAN's
// few browsers and one Prometheus, and no more for a flood to take.
const maxConns = 32

// Serve listens on addr and serves h until the returned stop is called.
func Serve(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 8 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(limitListener(ln, maxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("HTTP endpoint stopped", "event", "http_error", "http_listen", addr, "error", err.Error())
		}
	}()
	log.Info("HTTP endpoint up: status page, /metrics, /status.json", "event", "http_up", "http_listen", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// limitListener accepts at most n connections at once; the rest wait in
// the kernel's backlog.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limited{Listener: ln, sem: make(chan struct{}, n)}
}

type limited struct {
	net.Listener
	sem chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
