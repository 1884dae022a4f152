package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// wait blocks until ctx is done or the HTTP server stops on its own, and
// returns why it stopped in the second case.
func (s *runningServer) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving: %w", err)
	}
}

// Close stops taking requests on every listener at once and lets those in
// flight finish (for up to shutdownTimeout), then writes every buffered
// usage event and the quota counters, and closes the store.
func (s *runningServer) Close() error {
	if s.onClose != nil {
		defer s.onClose()
	}
	s.log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var servers []*http.Server
	for _, srv := range []*http.Server{s.http, s.adminHTTP, s.metricsHTTP} {
		if srv != nil {
			servers = append(servers, srv)
		}
	}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() { errs[i] = srv.Shutdown(shutCtx) })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if s.certs != nil {
		s.certs.close()
	}
	// No request is in flight any more: the loops flush once more as they
	// stop, before the store closes.
	s.stopLoops()
	<-s.usageDone
	<-s.engineDone
	<-s.webhooksDone
	if cerr := s.closeStore(); err == nil {
		err = cerr
	}
	s.log.Info("stopped", "usage_events_written", s.usage.Written(), "usage_events_dropped", s.usage.Dropped())
	return err
}

// closeStore closes the store and logs a failure, which may mean the last
// writes were lost.
func (s *runningServer) closeStore() error {
	if err := s.closeDB(); err != nil {
		s.log.Error("closing the database failed", "err", err)
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}
