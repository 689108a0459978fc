// Command baseline is the yardstick of the ingest throughput target: the
// simplest ingest a Go developer would write by hand, a bare net/http
// handler that decodes the hit's JSON body, does one go-redis XADD of it per
// request and answers 202. No validation, enrichment, rate limit, router or
// group commit. The app, with Redis, must accept at least as many hits per
// second as this on the same machine (docs/BENCHMARKS.md,
// bench/bench.sh):
//
//	go run ./bench/baseline -addr 127.0.0.1:8091 -redis-url redis://127.0.0.1:6379/0
//	go run ./bench/loadgen -url http://127.0.0.1:8091 -sites any -rate 0 -duration 10s
//
// It listens on loopback only and deletes its stream when it stops.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pocketlytics/pocketlytics/internal/hit"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "loopback address to listen on")
	redisURL := flag.String("redis-url", os.Getenv("REDIS_URL"), "Redis to XADD to (default $REDIS_URL)")
	stream := flag.String("stream", "pl:bench:baseline", "stream key, deleted on exit")
	flag.Parse()

	if err := run(*addr, *redisURL, *stream); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(addr, redisURL, stream string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: listen on a loopback address only", addr)
	}
	if redisURL == "" {
		return errors.New("no Redis: pass -redis-url or set REDIS_URL")
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("-redis-url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	defer rdb.Del(context.Background(), stream)

	srv := &http.Server{Addr: addr, Handler: handler(rdb, stream), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// handler is the bare ingest: decode, XADD, 202.
func handler(rdb *redis.Client, stream string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/collect", func(w http.ResponseWriter, r *http.Request) {
		var p hit.Body
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, "invalid hit", http.StatusBadRequest)
			return
		}
		b, _ := json.Marshal(&p)
		err := rdb.XAdd(r.Context(), &redis.XAddArgs{Stream: stream, Values: []string{"e", string(b)}}).Err()
		if err != nil {
			http.Error(w, "not queued", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}
