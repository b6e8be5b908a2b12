package publish

import "testing"

// TestCovers: an existing stream is used only if its subjects take every
// message the publisher sends, <prefix>.account.<id>.<type>.
func TestCovers(t *testing.T) {
	t.Parallel()
	want := "bank.account.*.*"
	for pattern, ok := range map[string]bool{
		"bank.>": true, ">": true, "bank.account.>": true, "bank.account.*.*": true, "*.account.*.*": true,
		"bank.account.*": false, "bank.account.*.MoneyDeposited": false, "other.>": false, "bank": false,
		"bank.*": false, "bank.account.*.*.*": false,
	} {
		if got := covers(pattern, want); got != ok {
			t.Errorf("covers(%q, %q) = %v, want %v", pattern, want, got, ok)
		}
	}
	if !coversAny([]string{"other.>", "bank.>"}, want) || coversAny(nil, want) {
		t.Error("coversAny: wrong answer")
	}
}
