package eventlog

import "time"

// FeedFilter selects a page of the global event log.
type FeedFilter struct {
	// Types keeps the events of these types (all when empty).
	Types []string
	// From and To bound recorded_at, inclusive (unbounded when zero).
	From, To time.Time
	// After is the position the page starts after (the zero Position: the start).
	After Position
	// Limit is the most events returned.
	Limit int
}

// FeedEvent is one event of the global log with its stream's type.
type FeedEvent struct {
	RecordedEvent
	StreamType string
}

// SystemSummary is the whole system's figures at an instant.
type SystemSummary struct {
	Accounts struct {
		Total  int64 `json:"total"`
		Active int64 `json:"active"`
		Closed int64 `json:"closed"`
	} `json:"accounts"`
	Balances []SystemCurrencyTotal `json:"balances"`
}

// SystemCurrencyTotal is one currency's total balance and pending transfers,
// as decimal strings in the currency's minor digits.
type SystemCurrencyTotal struct {
	Currency string `json:"currency"`
	Total    string `json:"total"`
	InFlight string `json:"in_flight"`
}
