package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidateOwnerID checks an owner id (DESIGN §2): valid UTF-8, 1-128
// characters, not blank, and no control (Cc) or format (Cf) characters.
// Format characters are refused because they are invisible: with U+200B or
// U+202E two owner ids that print the same would name two owners.
// Errors wrap ErrInvalid.
func ValidateOwnerID(s string) error {
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: owner_id is not valid UTF-8", ErrInvalid)
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("%w: owner_id must not be blank", ErrInvalid)
	case utf8.RuneCountInString(s) > MaxOwnerIDLen:
		return fmt.Errorf("%w: owner_id is longer than %d characters", ErrInvalid, MaxOwnerIDLen)
	case strings.IndexFunc(s, isControlOrFormat) >= 0:
		return fmt.Errorf("%w: owner_id must not contain control or invisible format characters", ErrInvalid)
	}
	return nil
}

// ValidateText checks free text such as a description or a reason: valid
// UTF-8, at most max characters, no control characters and no bidirectional
// controls (which would make the text display in another order than it is
// stored). Other format characters, such as the joiners some scripts need,
// are allowed. The text is checked, never altered. Errors wrap ErrInvalid.
func ValidateText(s string, max int) error {
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: text is not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(s) > max:
		return fmt.Errorf("%w: text is longer than %d characters", ErrInvalid, max)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: text must not contain control characters", ErrInvalid)
	case strings.IndexFunc(s, isBidiControl) >= 0:
		return fmt.Errorf("%w: text must not contain bidirectional control characters", ErrInvalid)
	}
	return nil
}

func isControlOrFormat(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }

// isBidiControl reports the embedding, override and isolate controls
// (U+202A-U+202E, U+2066-U+2069).
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
