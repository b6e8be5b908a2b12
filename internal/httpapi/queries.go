package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/evbank/bank/internal/domain"
	"github.com/evbank/bank/internal/query"
	"github.com/evbank/bank/internal/readmodel"
)

// defaultMinVersionWait is MIN_VERSION_WAIT's default, used when Deps leaves it 0.
const defaultMinVersionWait = 2 * time.Second

// defaultSummaryDays is the window of daily summaries when from or to is absent.
const defaultSummaryDays = 30

// AccountPage is a page of GET /accounts.
type AccountPage struct {
	Items      []query.Account `json:"items"`
	NextCursor *string         `json:"next_cursor"`
}

// TransactionPage is a page of GET /accounts/{id}/transactions.
type TransactionPage struct {
	Items      []query.Transaction `json:"items"`
	NextCursor *string             `json:"next_cursor"`
}

// TransferPage is a page of GET /accounts/{id}/transfers.
type TransferPage struct {
	Items      []query.Transfer `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

// DailySummaries is the answer of GET /accounts/{id}/daily-summaries.
type DailySummaries struct {
	Items []query.DailySummary `json:"items"`
}

// checkQuery refuses a query string that does not parse (a bad percent-escape,
// a ';' separator). r.URL.Query() would silently drop such a pair, and a
// dropped owner_id filter would list every account.
func checkQuery(r *http.Request) error {
	if r.URL.RawQuery == "" {
		return nil // the usual case, without building an empty map to say so
	}
	if _, err := url.ParseQuery(r.URL.RawQuery); err == nil {
		return nil
	}
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		_, verr := url.QueryUnescape(rawValue)
		if kerr == nil && verr == nil && !strings.Contains(pair, ";") {
			continue
		}
		if kerr != nil || strings.Contains(rawKey, ";") || key == "" {
			key = "query"
		}
		return invalid(key, "is not a well-formed query parameter (percent-encode reserved characters)")
	}
	return invalid("query", "is not a well-formed query string")
}

// param returns the query parameter name. A parameter given more than once is
// invalid: which of the values was meant cannot be known.
func param(r *http.Request, name string) (value string, present bool, err error) {
	if r.URL.RawQuery == "" {
		return "", false, nil // parsing "" would only build an empty map
	}
	values, present := r.URL.Query()[name]
	switch {
	case !present:
		return "", false, nil
	case len(values) > 1:
		return "", true, invalid(name, "must be given at most once")
	}
	return values[0], true, nil
}

// positiveInt parses a decimal integer from 1 to 2^31-1, digits only (no sign).
func positiveInt(s string) (int, bool) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return int(n), err == nil && n >= 1
}

// minVersion reads ?min_version=, 0 when absent.
func minVersion(r *http.Request) (int, error) {
	raw, present, err := param(r, "min_version")
	if err != nil || !present {
		return 0, err
	}
	n, ok := positiveInt(raw)
	if !ok {
		return 0, invalid("min_version", "must be a positive integer (an account version)")
	}
	return n, nil
}

// awaitVersion makes a read of account id wait for the projection to hold
// version n (a no-op for n == 0). A version the event store's stream has
// never reached is invalid; an account the event store does not have is not
// found. When wait is false only the check against the event store is made
// (the answer comes from the event store itself).
func (h *handler) awaitVersion(r *http.Request, id uuid.UUID, n int, wait bool) error {
	if n == 0 {
		return nil
	}
	// The owner is checked before the version: "never reached version N"
	// about another owner's account would tell that it exists.
	owner, have, err := h.events.StreamHead(r.Context(), id)
	if err != nil {
		return err
	}
	if err := mayAccess(r, owner); err != nil {
		return err
	}
	switch {
	case have < n:
		return invalid("min_version", "the account has never reached version "+strconv.Itoa(n)+"; it is at version "+strconv.Itoa(have))
	case !wait:
		return nil
	}
	return h.queries.WaitForVersion(r.Context(), id, n, h.minVersionWait)
}

// accountQuery reads what every single-account query takes: the account id, a
// query string that parses, and ?min_version= (0 when absent).
func accountQuery(r *http.Request) (id uuid.UUID, minVer int, err error) {
	if id, err = accountID(r); err != nil {
		return uuid.Nil, 0, err
	}
	if err = checkQuery(r); err != nil {
		return uuid.Nil, 0, err
	}
	minVer, err = minVersion(r)
	return id, minVer, err
}

// getAccount answers GET /accounts/{id}[?as_of=][&min_version=].
func (h *handler) getAccount(w http.ResponseWriter, r *http.Request) {
	id, n, err := accountQuery(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	asOf, hasAsOf, err := asOfParam(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	if err := h.awaitVersion(r, id, n, !hasAsOf); err != nil {
		writeProblem(w, r, err)
		return
	}
	if hasAsOf {
		a, err := h.events.LoadAsOf(r.Context(), id, asOf)
		if err == nil {
			err = mayAccess(r, a.OwnerID())
		}
		if err != nil {
			writeProblem(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, query.AccountView(a))
		return
	}
	a, err := h.queries.GetAccount(r.Context(), id)
	if err == nil {
		err = mayAccess(r, a.OwnerID)
	}
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(a.Version))
	body, err := marshalAccount(a)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError) // as writeJSON
		return
	}
	writeJSONBytes(w, http.StatusOK, body)
}

// asOfParam reads ?as_of=, an RFC 3339 instant.
func asOfParam(r *http.Request) (time.Time, bool, error) {
	raw, present, err := param(r, "as_of")
	if err != nil || !present {
		return time.Time{}, false, err
	}
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return time.Time{}, true, invalid("as_of", "must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z (percent-encode a '+' offset as %2B)")
	}
	return t, true, nil
}

// listAccounts answers GET /accounts?owner_id=&status=&limit=&cursor=.
func (h *handler) listAccounts(w http.ResponseWriter, r *http.Request) {
	f, err := accountFilter(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	page, err := h.queries.ListAccounts(r.Context(), f)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	out := AccountPage{Items: page.Items}
	if page.More {
		next := encodeCursor("a:" + page.Items[len(page.Items)-1].ID.String())
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
}

func accountFilter(r *http.Request) (query.AccountFilter, error) {
	var f query.AccountFilter
	if err := checkQuery(r); err != nil {
		return f, err
	}
	owner, present, err := param(r, "owner_id")
	if err != nil {
		return f, err
	}
	if present {
		if err := domain.ValidateOwnerID(owner); err != nil {
			return f, invalid("owner_id", strings.TrimPrefix(err.Error(), domain.ErrInvalid.Error()+": "))
		}
		f.OwnerID = owner
	}
	// A principal lists its own accounts only; naming another owner is
	// refused rather than answered with an empty page.
	if mine := ownerFilter(r); mine != "" {
		if present && f.OwnerID != mine {
			return f, forbidden("only an admin may list another owner's accounts")
		}
		f.OwnerID = mine
	}
	status, present, err := param(r, "status")
	if err != nil {
		return f, err
	}
	if present {
		switch domain.Status(status) {
		case domain.StatusActive, domain.StatusClosed:
			f.Status = domain.Status(status)
		default:
			return f, invalid("status", "must be active or closed")
		}
	}
	if f.Limit, err = pageLimit(r); err != nil {
		return f, err
	}
	cursor, err := decodeCursor(r)
	if err != nil {
		return f, err
	}
	if cursor != "" {
		raw, ok := strings.CutPrefix(cursor, "a:")
		after, valid := parseUUID(raw)
		if !ok || !valid {
			return f, invalid("cursor", "is not a cursor this API returned")
		}
		f.After = &after
	}
	return f, nil
}

// transactions answers GET /accounts/{id}/transactions?limit=&cursor=&min_version=.
func (h *handler) transactions(w http.ResponseWriter, r *http.Request) {
	id, n, err := accountQuery(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	limit, before, err := versionPage(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	if err := h.awaitVersion(r, id, n, true); err != nil {
		writeProblem(w, r, err)
		return
	}
	page, err := h.queries.Transactions(r.Context(), id, ownerFilter(r), limit, before)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	out := TransactionPage{Items: page.Items}
	if page.More {
		out.NextCursor = versionCursor(page.Items[len(page.Items)-1].Version)
	}
	writeJSON(w, http.StatusOK, out)
}

// accountTransfers answers GET /accounts/{id}/transfers?limit=&cursor=&min_version=:
// the transfers the account sent or received, from the transfers read table.
// min_version waits for account_balances as the other account queries do, and
// then for the transfers projection to have reached account_balances'
// checkpoint: they move together in the Runner, but not while transfers
// catches up alone (just added, or rebuilt).
func (h *handler) accountTransfers(w http.ResponseWriter, r *http.Request) {
	id, n, err := accountQuery(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	limit, after, err := transferPage(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	if err := h.awaitVersion(r, id, n, false); err != nil { // the owner and the version's existence
		writeProblem(w, r, err)
		return
	}
	if n > 0 {
		// The transfers projection is named after its table (checked in internal/projection).
		if err := h.queries.WaitForVersionIn(r.Context(), readmodel.Transfers.Name, id, n, h.minVersionWait); err != nil {
			writeProblem(w, r, err)
			return
		}
	}
	page, err := h.queries.AccountTransfers(r.Context(), id, ownerFilter(r), limit, after)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	out := TransferPage{Items: page.Items}
	if page.More {
		last := page.Items[len(page.Items)-1]
		// Microseconds: what the table keeps of created_at.
		next := encodeCursor("t:" + strconv.FormatInt(last.CreatedAt.UnixMicro(), 10) + ":" + last.ID.String())
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// transferPage reads ?limit= and a transfer cursor ("t:<created_at in Unix
// microseconds>:<transfer id>"); after is nil without a cursor.
func transferPage(r *http.Request) (limit int, after *query.TransferCursor, err error) {
	if limit, err = pageLimit(r); err != nil {
		return 0, nil, err
	}
	cursor, err := decodeCursor(r)
	if err != nil || cursor == "" {
		return limit, nil, err
	}
	bad := invalid("cursor", "is not a cursor this API returned")
	rest, ok := strings.CutPrefix(cursor, "t:")
	micros, rawID, ok2 := strings.Cut(rest, ":")
	id, valid := parseUUID(rawID)
	if !ok || !ok2 || !valid {
		return 0, nil, bad
	}
	us, perr := strconv.ParseInt(micros, 10, 64)
	if perr != nil {
		return 0, nil, bad
	}
	return limit, &query.TransferCursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}

// dailySummaries answers GET /accounts/{id}/daily-summaries?from=&to=&min_version=.
func (h *handler) dailySummaries(w http.ResponseWriter, r *http.Request) {
	id, n, err := accountQuery(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	from, to, err := dateRange(r, time.Now())
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	if err := h.awaitVersion(r, id, n, true); err != nil {
		writeProblem(w, r, err)
		return
	}
	items, err := h.queries.DailySummaries(r.Context(), id, ownerFilter(r), from, to)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DailySummaries{Items: items})
}

// dateRange reads ?from=&to=, UTC dates, both included. to defaults to
// today (UTC), from to the 30 days ending at to; from after to is invalid.
func dateRange(r *http.Request, now time.Time) (from, to time.Time, err error) {
	y, m, d := now.UTC().Date()
	to = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	date := func(name string) (time.Time, bool, error) {
		raw, present, err := param(r, name)
		if err != nil || !present {
			return time.Time{}, false, err
		}
		t, err := time.Parse(query.DateLayout, raw)
		if err != nil {
			return time.Time{}, true, invalid(name, "must be a date YYYY-MM-DD")
		}
		return t, true, nil
	}
	if t, present, err := date("to"); err != nil {
		return from, to, err
	} else if present {
		to = t
	}
	from = to.AddDate(0, 0, -(defaultSummaryDays - 1))
	if t, present, err := date("from"); err != nil {
		return from, to, err
	} else if present {
		from = t
	}
	if from.After(to) {
		return from, to, invalid("from", "must not be after to")
	}
	return from, to, nil
}

// summary answers GET /summary.
func (h *handler) summary(w http.ResponseWriter, r *http.Request) {
	asOf, hasAsOf, err := asOfParam(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	if hasAsOf {
		h.summaryAsOf(w, r, asOf)
		return
	}
	s, err := h.queries.Summary(r.Context())
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}
