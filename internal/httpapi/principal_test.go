package httpapi_test

// bearer is the header pair that makes one request come from sub with the
// space-separated scopes, whatever a's own token is.
func (a *testAPI) bearer(sub, scopes string) []string {
	return []string{"Authorization", "Bearer " + a.tokenFor(sub, scopes)}
}

// noToken is the header pair that sends a request without a token.
func (a *testAPI) noToken() []string { return []string{"Authorization", "<delete>"} }
