package httpapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// statusWriter keeps chi's WrapResponseWriter's rules: an informational
// status passes through uncounted, the first final status wins (a second is
// not passed on), a Write without a status is a 200, and every byte written,
// through Write or ReadFrom, is counted.
func TestStatusWriter(t *testing.T) {
	t.Parallel()
	rec := &headerLog{ResponseRecorder: httptest.NewRecorder()}
	w := &statusWriter{ResponseWriter: rec}
	w.WriteHeader(http.StatusEarlyHints)
	if w.status != 0 {
		t.Errorf("status %d after 103, want none yet", w.status)
	}
	w.WriteHeader(http.StatusCreated)
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte("abc"))
	n, err := w.ReadFrom(strings.NewReader("defg"))
	if err != nil || n != 4 {
		t.Fatalf("ReadFrom: %d, %v", n, err)
	}
	if w.status != http.StatusCreated || !slices.Equal(rec.sent, []int{103, 201}) || w.bytes != 7 || rec.Body.String() != "abcdefg" {
		t.Errorf("status %d (sent %v), %d bytes, body %q; want 201 (sent 103, 201), 7 bytes, abcdefg", w.status, rec.sent, w.bytes, rec.Body)
	}

	bare := httptest.NewRecorder()
	w = &statusWriter{ResponseWriter: bare}
	_, _ = w.Write([]byte("x"))
	if w.status != http.StatusOK || bare.Code != http.StatusOK || w.bytes != 1 {
		t.Errorf("a bare Write: status %d (sent %d), %d bytes; want 200, 1 byte", w.status, bare.Code, w.bytes)
	}
	if http.NewResponseController(w).Flush() != nil || !bare.Flushed {
		t.Error("Flush does not reach the writer underneath")
	}
}

// headerLog records the statuses passed to WriteHeader; it takes 1xx as the
// server does, where httptest.ResponseRecorder would take one as final.
type headerLog struct {
	*httptest.ResponseRecorder
	sent []int
}

func (h *headerLog) WriteHeader(code int) {
	h.sent = append(h.sent, code)
	if code >= 200 {
		h.ResponseRecorder.WriteHeader(code)
	}
}
