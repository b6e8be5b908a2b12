// Command consumer prints the bank's deposits as they happen: a small,
// runnable example of consuming the events the projector publishes to NATS
// JetStream (README, "Consuming events").
//
//	go run ./examples/consumer                          # NATS_URL=nats://127.0.0.1:4222
//	go run ./examples/consumer -from-start              # replay every deposit so far first
//
// It reads the stream with an ordered consumer filtered on
// bank.account.*.MoneyDeposited: nothing is kept on the server, so each run
// starts afresh. A service that must not miss events while it is down uses a
// durable consumer instead, and de-duplicates by the CloudEvent id.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cloudEvent is the part of the published CloudEvent this example reads.
type cloudEvent struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	Subject       string    `json:"subject"` // the account id
	Time          time.Time `json:"time"`
	Sequence      string    `json:"sequence"`
	StreamVersion int       `json:"streamversion"`
	CorrelationID string    `json:"correlationid"`
	Data          struct {
		AmountMinor int64  `json:"amount_minor"`
		Currency    string `json:"currency"`
		Description string `json:"description"`
	} `json:"data"`
}

func main() {
	url := flag.String("url", envOr("NATS_URL", nats.DefaultURL), "NATS server URL")
	stream := flag.String("stream", envOr("NATS_STREAM", "BANK_EVENTS"), "JetStream stream name")
	prefix := flag.String("prefix", envOr("NATS_SUBJECT_PREFIX", "bank"), "subject prefix")
	fromStart := flag.Bool("from-start", false, "print the deposits already in the stream first")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *url, *stream, *prefix, *fromStart)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url, stream, prefix string, fromStart bool) error {
	nc, err := nats.Connect(url, nats.Name("bank example consumer"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	policy := jetstream.DeliverNewPolicy
	if fromStart {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + ".account.*.MoneyDeposited"},
		DeliverPolicy:  policy,
	})
	if err != nil {
		return fmt.Errorf("consumer on stream %s: %w", stream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ce cloudEvent
		if err := json.Unmarshal(m.Data(), &ce); err != nil {
			log.Printf("%s: not a CloudEvent: %v", m.Subject(), err)
			return
		}
		fmt.Printf("%s  account %s  +%d %s (minor units)  %q  [event %s, position %s, version %d]\n",
			ce.Time.Format(time.RFC3339), ce.Subject, ce.Data.AmountMinor, ce.Data.Currency, ce.Data.Description,
			ce.ID, ce.Sequence, ce.StreamVersion)
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	log.Printf("printing deposits from stream %s on %s; Ctrl-C stops", stream, url)
	<-ctx.Done()
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
