package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/command"
	"github.com/evbank/bank/internal/store"
	"github.com/evbank/bank/internal/telemetry"
)

// recoveryBatch bounds the transfers one round finishes; the rest wait for
// the next round a moment later.
const recoveryBatch = 200

// recoverTransfers finishes, every moment, the transfers a dead api left
// pending for longer than after (DESIGN §7). Every api runs this loop; the
// advisory lock lets one of them at a time do the work, so the others only
// report the backlog.
func recoverTransfers(ctx context.Context, events *store.EventStore, commands *command.Service, after time.Duration, m *telemetry.TransferMetrics, log zerolog.Logger) {
	t := time.NewTicker(min(max(after/4, 100*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if pending, oldest, err := events.TransferBacklog(ctx); err == nil {
			m.Backlog(pending, oldest)
		}
		var finished int
		_, err := events.TryExclusive(ctx, store.TransferRecoveryLockKey, func(ctx context.Context) error {
			var err error
			finished, err = commands.RecoverTransfers(ctx, after, recoveryBatch)
			return err
		})
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn().Err(err).Int("finished", finished).Msg("transfer recovery failed; retrying")
		case finished > 0:
			log.Info().Int("finished", finished).Msg("finished transfers left pending by a stopped api")
		}
	}
}
