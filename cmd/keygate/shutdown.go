package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// Close stops taking requests and lets those in flight finish, then writes
// every buffered usage event and the quota counters, and closes the store.
func (s *runningServer) Close() error {
	if s.onClose != nil {
		defer s.onClose()
	}
	s.log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	err := s.http.Shutdown(shutCtx)
	if s.metricsHTTP != nil {
		if merr := s.metricsHTTP.Shutdown(shutCtx); err == nil {
			err = merr
		}
	}
	cancel()
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
