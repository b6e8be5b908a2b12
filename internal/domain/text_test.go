package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evbank/bank/internal/domain"
)

func TestValidateOwnerID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		valid bool
	}{
		{"plain", "alice", true},
		{"one character", "a", true},
		{"128 characters", strings.Repeat("é", 128), true},
		{"non-Latin", "山田太郎", true},
		{"inner and outer spaces kept", " bob smith ", true},
		{"zero-width joiner in an emoji is Cf", "👩\u200d💻", false},
		{"empty", "", false},
		{"blank", "   ", false},
		{"blank with a no-break space", "\u00a0\u3000", false},
		{"129 characters", strings.Repeat("é", 129), false},
		{"NUL", "a\u0000", false},
		{"tab", "a\tb", false},
		{"DEL", "a\u007f", false},
		{"C1 control", "a\u0085", false},
		{"right-to-left override", "alice\u202e", false},
		{"zero-width space", "ali\u200bce", false},
		{"byte order mark", "\ufeffalice", false},
		{"soft hyphen", "al\u00adice", false},
		{"left-to-right isolate", "\u2066alice", false},
		{"word joiner", "a\u2060b", false},
		{"invalid UTF-8", "a\xffb", false},
		{"encoded surrogate", "\xed\xa0\x80", false},
	}
	for _, tc := range tests {
		err := domain.ValidateOwnerID(tc.in)
		if tc.valid && err != nil {
			t.Errorf("%s: ValidateOwnerID(%q) = %v, want nil", tc.name, tc.in, err)
		}
		if !tc.valid && !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: ValidateOwnerID(%q) = %v, want ErrInvalid", tc.name, tc.in, err)
		}
	}
}

func TestValidateText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		max   int
		valid bool
	}{
		{"empty is none", "", 10, true},
		{"at the limit", "hello", 5, true},
		{"over the limit", "hello!", 5, false},
		{"characters, not bytes", "héllo", 5, true},
		{"500 characters", strings.Repeat("💸", 500), domain.MaxDescriptionLen, true},
		{"501 characters", strings.Repeat("💸", 501), domain.MaxDescriptionLen, false},
		{"line separator is not a control", "\u2028", 5, true},
		{"zero-width joiner is allowed in text", "👩\u200d💻", 5, true},
		{"zero-width non-joiner is allowed in text", "a\u200cb", 5, true},
		{"right-to-left mark is allowed", "a\u200fb", 5, true},
		{"NUL", "a\u0000", 5, false},
		{"unit separator", "a\u001f", 5, false},
		{"DEL", "a\u007f", 5, false},
		{"C1 control", "a\u009f", 5, false},
		{"newline", "a\nb", 5, false},
		{"LRE", "a\u202a", 5, false},
		{"RLE", "a\u202b", 5, false},
		{"PDF", "a\u202c", 5, false},
		{"LRO", "a\u202d", 5, false},
		{"RLO", "a\u202e", 5, false},
		{"LRI", "a\u2066", 5, false},
		{"RLI", "a\u2067", 5, false},
		{"FSI", "a\u2068", 5, false},
		{"PDI", "a\u2069", 5, false},
		{"just after the isolates", "a\u206a", 5, true},
		{"encoded surrogate", "\xed\xa0\x80", 5, false},
		{"invalid UTF-8", "\xff", 5, false},
	}
	for _, tc := range tests {
		err := domain.ValidateText(tc.in, tc.max)
		if tc.valid && err != nil {
			t.Errorf("%s: ValidateText(%q, %d) = %v, want nil", tc.name, tc.in, tc.max, err)
		}
		if !tc.valid && !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: ValidateText(%q, %d) = %v, want ErrInvalid", tc.name, tc.in, tc.max, err)
		}
	}
}
