package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// An Upcaster turns the data of one event type from schema version N into N+1.
type Upcaster func(data []byte, uc UpcastContext) ([]byte, error)

type upcastKey struct {
	eventType string
	from      int
}

// upcasters is the registry: each entry lifts one (type, version) by one step.
// Stored events are never rewritten; they are lifted every time they are read.
var upcasters = map[upcastKey]Upcaster{
	{TypeAccountOpened, 1}:  UpcastAccountOpenedV1,
	{TypeMoneyDeposited, 1}: UpcastMoneyMovedV1,
	{TypeMoneyWithdrawn, 1}: UpcastMoneyMovedV1,
	{TypeAccountClosed, 1}:  UpcastAccountClosedV1,
}

// Upcast lifts data of eventType from schemaVersion to CurrentSchemaVersion.
// An unknown type or version is an error wrapping ErrUnknownEvent, never a guess.
func Upcast(eventType string, schemaVersion int, data []byte, uc UpcastContext) ([]byte, error) {
	if schemaVersion > CurrentSchemaVersion || schemaVersion < 1 {
		return nil, fmt.Errorf("%w: %s schema version %d", ErrUnknownEvent, eventType, schemaVersion)
	}
	for v := schemaVersion; v < CurrentSchemaVersion; v++ {
		up, ok := upcasters[upcastKey{eventType, v}]
		if !ok {
			return nil, fmt.Errorf("%w: %s schema version %d", ErrUnknownEvent, eventType, v)
		}
		var err error
		if data, err = up(data, uc); err != nil {
			return nil, fmt.Errorf("upcast %s v%d: %w", eventType, v, err)
		}
	}
	return data, nil
}

// v1 shapes, written by the legacy service: camelCase, amounts as JSON numbers
// in major units, no currency.
type accountOpenedV1 struct {
	AccountID string    `json:"accountId"`
	OwnerID   string    `json:"ownerId"`
	OpenedAt  time.Time `json:"openedAt"`
}

type moneyMovedV1 struct {
	Amount      json.Number `json:"amount"`
	Description string      `json:"description"`
	Timestamp   *time.Time  `json:"timestamp"`
}

type accountClosedV1 struct {
	Reason   string    `json:"reason"`
	ClosedAt time.Time `json:"closedAt"`
}

// The documents the v1 upcasters write. Their fields are in key order, so the
// bytes are those json.Marshal gave for the map[string]any they replace.
type accountOpenedV2 struct {
	AccountID string    `json:"account_id"`
	Currency  string    `json:"currency"`
	OpenedAt  time.Time `json:"opened_at"`
	OwnerID   string    `json:"owner_id"`
}

type moneyMovedV2 struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
}

type accountClosedV2 struct {
	ClosedAt time.Time `json:"closed_at"`
	Reason   string    `json:"reason"`
}

// errNoDefaultCurrency is a wiring mistake: without it a legacy event would
// silently become an event in currency "".
var errNoDefaultCurrency = errors.New("UpcastContext.DefaultCurrency is not set")

func decodeV1(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// UpcastAccountOpenedV1 gives a legacy AccountOpened the default currency.
func UpcastAccountOpenedV1(data []byte, uc UpcastContext) ([]byte, error) {
	if uc.DefaultCurrency.IsZero() {
		return nil, errNoDefaultCurrency
	}
	var v1 accountOpenedV1
	if err := decodeV1(data, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(accountOpenedV2{
		AccountID: v1.AccountID,
		OwnerID:   v1.OwnerID,
		Currency:  uc.DefaultCurrency.Code(),
		OpenedAt:  v1.OpenedAt,
	})
}

// UpcastMoneyMovedV1 converts a legacy MoneyDeposited or MoneyWithdrawn amount
// from major units to exact minor units of the default currency. The legacy
// timestamp duplicates recorded_at and is dropped.
func UpcastMoneyMovedV1(data []byte, uc UpcastContext) ([]byte, error) {
	if uc.DefaultCurrency.IsZero() {
		return nil, errNoDefaultCurrency
	}
	var v1 moneyMovedV1
	if !fastMoneyMovedV1(data, &v1) {
		v1 = moneyMovedV1{}
		if err := decodeV1(data, &v1); err != nil {
			return nil, err
		}
	}
	if v1.Amount == "" {
		return nil, fmt.Errorf("%w: amount is missing", ErrInvalid)
	}
	minor, err := MajorToMinor(v1.Amount.String(), uc.DefaultCurrency)
	if err != nil {
		return nil, err
	}
	return json.Marshal(moneyMovedV2{
		AmountMinor: minor,
		Currency:    uc.DefaultCurrency.Code(),
		Description: v1.Description,
	})
}

// UpcastAccountClosedV1 renames the legacy fields.
func UpcastAccountClosedV1(data []byte, _ UpcastContext) ([]byte, error) {
	var v1 accountClosedV1
	if err := decodeV1(data, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(accountClosedV2{ClosedAt: v1.ClosedAt, Reason: v1.Reason})
}
