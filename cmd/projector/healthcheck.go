package main

import (
	"context"
	"fmt"

	"github.com/evbank/bank/internal/probe"
)

// healthcheck is `projector healthcheck`: nil when the projector of this
// environment answers /healthz on PROJECTOR_ADDR. The image is distroless (no
// shell, no curl), so its HEALTHCHECK runs the binary itself.
func healthcheck(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return probe.Healthz(ctx, cfg.Addr)
}
