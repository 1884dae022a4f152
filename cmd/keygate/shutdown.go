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
// flight finish, waits for the audit writes of keys found in URLs, then
// writes every buffered usage event and the quota counters, and closes the
// store. All of it but the last writes is bounded by shutdownTimeout.
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
	s.waitExposures(shutCtx)
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

// waitExposures waits, until ctx is done, for the key.exposed audit events
// of requests already answered to be written, so that a key refused in a
// URL just before a shutdown is still in the audit log.
func (s *runningServer) waitExposures(ctx context.Context) {
	if s.exposures == nil {
		return
	}
	if ctx.Err() != nil {
		// Requests may still be running and reporting: waiting is not
		// possible, and the time for it is spent.
		s.log.Warn("shutdown: not waiting for key exposures still being audited: the shutdown took too long")
		return
	}
	done := make(chan struct{})
	go func() { s.exposures.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown: key exposures still being audited were given up: the shutdown took too long")
	}
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
