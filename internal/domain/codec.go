package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrUnknownEvent is returned for an event type or schema version this code cannot read.
var ErrUnknownEvent = errors.New("unknown event type or schema version")

// EncodeEvent returns the stored form of e: its type, the current schema version
// and its JSON data.
func EncodeEvent(e Event) (eventType string, schemaVersion int, data []byte, err error) {
	data, err = json.Marshal(e)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return e.EventType(), CurrentSchemaVersion, data, nil
}

// UpcastContext carries what an upcaster needs beyond the stored data.
type UpcastContext struct {
	// DefaultCurrency is given to legacy events, which had no currency.
	DefaultCurrency Currency
}

// DecodeEvent turns a stored event of any known schema version into its current
// shape, upcasting older versions first. Errors wrap ErrUnknownEvent for
// types and versions it does not know, and say what is wrong for bad data.
func DecodeEvent(eventType string, schemaVersion int, data []byte, uc UpcastContext) (Event, error) {
	current, err := Upcast(eventType, schemaVersion, data, uc)
	if err != nil {
		return nil, err
	}
	var e Event
	switch eventType {
	case TypeAccountOpened:
		var v AccountOpened
		if !fastAccountOpened(current, &v) {
			v = AccountOpened{}
			err = decodeStrict(current, &v)
		}
		e = v
	case TypeMoneyDeposited:
		var v MoneyDeposited
		if !fastMoneyMoved(current, &v.AmountMinor, &v.Currency, &v.Description) {
			v = MoneyDeposited{}
			err = decodeStrict(current, &v)
		}
		e = v
	case TypeMoneyWithdrawn:
		var v MoneyWithdrawn
		if !fastMoneyMoved(current, &v.AmountMinor, &v.Currency, &v.Description) {
			v = MoneyWithdrawn{}
			err = decodeStrict(current, &v)
		}
		e = v
	case TypeAccountClosed:
		var v AccountClosed
		if !fastAccountClosed(current, &v) {
			v = AccountClosed{}
			err = decodeStrict(current, &v)
		}
		e = v
	case TypeTransferSent:
		var v TransferSent
		err = decodeStrict(current, &v)
		e = v
	case TypeTransferReceived:
		var v TransferReceived
		err = decodeStrict(current, &v)
		e = v
	case TypeTransferReturned:
		var v TransferReturned
		err = decodeStrict(current, &v)
		e = v
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnknownEvent, eventType)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, CurrentSchemaVersion, err)
	}
	return e, nil
}

// decodeStrict decodes what the fast path (fastdecode.go) does not take:
// unknown fields and wrong types are errors.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
