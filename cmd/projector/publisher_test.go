package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/evbank/bank/internal/pgtest"
	"github.com/evbank/bank/internal/testwait"
)

// TestReadyzNamesThePublisherState: with NATS_URL naming a broker that is
// not there, the projections still apply and /readyz stays 200, naming the
// publisher's state; without NATS_URL it says the publisher is off.
func TestReadyzNamesThePublisherState(t *testing.T) {
	// A port with nothing listening: taken, then released.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "nats://" + l.Addr().String()
	_ = l.Close()

	for _, tc := range []struct{ natsURL, status string }{
		{deadURL, "broker unreachable"},
		{"", "off"},
	} {
		t.Run(tc.status, func(t *testing.T) {
			eventsURL, _ := setEnv(t)
			t.Setenv("NATS_URL", tc.natsURL)
			cfg, err := loadConfig()
			if err != nil {
				t.Fatal(err)
			}
			pool := pgtest.NewPool(t, eventsURL)
			appendAccount(t, pool, uuid.New(), 3)
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan string, 1)
			done := make(chan error, 1)
			go func() { done <- serve(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), ready) }()
			addr := <-ready
			testwait.Until(t, 15*time.Second, func() (bool, string) {
				code, body := get(t, "http://"+addr+"/readyz")
				var got struct {
					Status    string `json:"status"`
					Publisher struct {
						Status string `json:"status"`
						Detail string `json:"detail"`
					} `json:"publisher"`
				}
				_ = json.Unmarshal([]byte(body), &got)
				return code == http.StatusOK && got.Status == "ready" && got.Publisher.Status == tc.status && got.Publisher.Detail != "",
					"readyz " + body
			})
			// The projections are not held up by the publisher.
			testwait.Until(t, 15*time.Second, func() (bool, string) {
				_, body := get(t, "http://"+addr+"/metrics")
				return containsLine(body, `projector_events_applied_total{projection="account_balances"} 4`),
					"account_balances has not applied the 4 events while the publisher is " + tc.status
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}
		})
	}
}

func containsLine(body, line string) bool {
	return slices.Contains(strings.Split(body, "\n"), line)
}
