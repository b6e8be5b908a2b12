package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/evbank/bank/internal/command"
)

// idempotencyKey returns the Idempotency-Key header: 1-255 printable ASCII
// characters. present is false when the header was not sent at all.
func idempotencyKey(r *http.Request) (key string, present bool, err error) {
	values, present := r.Header["Idempotency-Key"]
	if !present {
		return "", false, nil
	}
	key = values[0]
	if len(values) > 1 || len(key) < 1 || len(key) > 255 {
		return "", true, invalid("Idempotency-Key", "must be one value of 1-255 printable ASCII characters")
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", true, invalid("Idempotency-Key", "must be one value of 1-255 printable ASCII characters")
		}
	}
	return key, true, nil
}

// ifMatch parses If-Match: "*" or a list of entity tags. Strong comparison: a
// weak tag (W/"3") is a valid tag that never matches, as is a tag that is not a
// version number. Anything that is not an entity tag is invalid.
func ifMatch(r *http.Request) (*command.Precondition, error) {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return nil, nil
	}
	joined := strings.TrimSpace(strings.Join(values, ","))
	if joined == "*" {
		return &command.Precondition{Any: true}, nil
	}
	p := &command.Precondition{Versions: []int{}}
	for _, part := range strings.Split(joined, ",") {
		tag := strings.TrimSpace(part)
		weak := strings.HasPrefix(tag, "W/")
		tag = strings.TrimPrefix(tag, "W/")
		if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' || !isETagChars(tag[1:len(tag)-1]) {
			return nil, invalid("If-Match", `must be * or entity tags such as "3"`)
		}
		if weak {
			continue
		}
		if v, err := strconv.Atoi(tag[1 : len(tag)-1]); err == nil && v > 0 && strconv.Itoa(v) == tag[1:len(tag)-1] {
			p.Versions = append(p.Versions, v)
		}
	}
	return p, nil
}

// isETagChars checks etagc of RFC 9110: %x21 / %x23-7E / obs-text.
func isETagChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }
