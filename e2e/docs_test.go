package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/evbank/bank/internal/testwait"
)

// chromiumPath is Debian's chromium, which `make test` and .ci/run install;
// $CHROMIUM overrides it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		// A failure, not a skip: the docs page would go untested in CI unnoticed.
		t.Fatalf("no browser at %s (%v): install Debian's chromium (`make test` does it as root: apt-get install chromium) or set CHROMIUM", p, err)
	}
	return p
}

// artifactDir is where tests leave files for people to look at:
// $TEST_ARTIFACTS, else e2e/testdata/artifacts (git-ignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserLog is what a page did, gathered from the browser's events.
type browserLog struct {
	mu       sync.Mutex
	problems []string // console errors, uncaught exceptions, browser log errors (CSP violations, failed loads)
	warnings []string
	requests []string // every URL the page requested
}

func (b *browserLog) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			if a.Value != nil {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		msg := fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			b.problems = append(b.problems, msg)
		case runtime.ConsoleAPICalledTypeWarning:
			b.warnings = append(b.warnings, msg)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, text))
	case *log.EventEntryAdded:
		msg := fmt.Sprintf("browser log (%s) %s: %s", ev.Entry.Source, ev.Entry.URL, ev.Entry.Text)
		switch ev.Entry.Level {
		case log.EntryLevelError:
			b.problems = append(b.problems, msg)
		case log.EntryLevelWarning:
			b.warnings = append(b.warnings, msg)
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	}
}

func (b *browserLog) snapshot() (problems, warnings, requests []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.problems), slices.Clone(b.warnings), slices.Clone(b.requests)
}

// newBrowser starts a headless Chromium of its own (fresh profile, no
// background traffic to Google's services) and returns a tab whose events
// go to bl.
func newBrowser(t *testing.T, bl *browserLog) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		// Root in CI: Chromium's sandbox refuses to run as root.
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1600),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	tab, tcancel := chromedp.NewContext(actx, chromedp.WithListener(bl.listen), chromedp.WithLogf(t.Logf))
	t.Cleanup(tcancel)
	return tab
}

// TestDocsPageInBrowser opens the api's /docs in a real browser: the
// reference renders every operation (the deposit and the transfer among
// them), under its CSP without a console error, and loads nothing from
// another host. It leaves a screenshot in the artifact directory.
func TestDocsPageInBrowser(t *testing.T) {
	t.Parallel()
	s := newStack(t, false)
	api := s.startAPI(t)

	var bl browserLog
	tab := newBrowser(t, &bl)
	if err := chromedp.Do(tab,
		chromedp.Navigate(api.url+"/docs"),
		// Swagger UI renders an .opblock per operation once it has fetched
		// and parsed /openapi.yaml.
		chromedp.WaitVisible(chromedp.CSS(".opblock")),
	); err != nil {
		problems, _, requests := bl.snapshot()
		t.Fatalf("the docs page did not render its operations: %v\nproblems: %q\nrequests: %q", err, problems, requests)
	}
	ids, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".opblock")).map(e => e.id)`))
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(".info .title")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "evbank accounts API") {
		t.Errorf("the page's title is %q, not the spec's", title)
	}
	// Swagger UI's ids are operations-<tag>-<operationId>.
	for _, op := range []string{"depositMoney", "createTransfer", "openAccount", "listAccountEvents", "getTransfer"} {
		if !slices.ContainsFunc(ids, func(id string) bool { return strings.HasSuffix(id, "-"+op) }) {
			t.Errorf("operation %s is not on the page; rendered: %v", op, ids)
		}
	}
	if len(ids) < 15 {
		t.Errorf("only %d operations rendered: %v", len(ids), ids)
	}

	// The top of the page, as a reader first sees it.
	screenshot(t, tab, "docs-first-view.png", chromedp.CaptureScreenshot())

	// "Try it out" with the token entered under Authorize: 200 (not 401)
	// shows the token was sent, and to this api rather than to the spec's
	// localhost:8080, which the CSP would have refused.
	op := "#operations-queries-listAccounts"
	if err := chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(".auth-wrapper .authorize")),
		chromedp.SendKeys(chromedp.CSS(".modal-ux input"), api.token),
		chromedp.Click(chromedp.CSS(".modal-ux .auth-btn-wrapper .authorize")),
		chromedp.Click(chromedp.CSS(".modal-ux .btn-done")),
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
		chromedp.Click(chromedp.CSS(op+" .execute")),
		chromedp.WaitVisible(chromedp.CSS(op+" .live-responses-table tbody .response-col_status")),
	); err != nil {
		problems, _, _ := bl.snapshot()
		t.Fatalf("try it out on GET /accounts: %v\nproblems: %q", err, problems)
	}
	status, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(op+" .live-responses-table tbody .response-col_status")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(status) != "200" {
		t.Errorf("try it out on GET /accounts with the token: status %q, want 200", status)
	}

	// Give late failures (a blocked font, a refused style) time to reach the log.
	if err := chromedp.Do(tab, chromedp.Sleep(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// The whole page, and the operation tried out.
	screenshot(t, tab, "docs-full.png", chromedp.FullScreenshot(100))
	screenshot(t, tab, "docs-try-it-out.png", chromedp.Screenshot(chromedp.CSS(op)))

	problems, warnings, requests := bl.snapshot()
	for _, w := range warnings {
		t.Logf("browser warning: %s", w)
	}
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	self, err := url.Parse(api.url)
	if err != nil {
		t.Fatal(err)
	}
	if len(requests) < 4 {
		t.Errorf("the browser saw only these requests: %q", requests)
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil {
			t.Errorf("request to %q: %v", r, err)
			continue
		}
		if u.Scheme == "data" {
			continue // the page's own inline icons, no request on the wire
		}
		if u.Host != self.Host {
			t.Errorf("the page requested %s, not from the api (%s)", r, self.Host)
		}
	}

	// The checks above pass as well when nothing is heard from the browser:
	// make it log an error, and try an inline script, which the CSP must
	// refuse with an error in the browser's log.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[any](`console.error("e2e-probe");
		const s = document.createElement("script"); s.textContent = "window.inlineRan = true"; document.body.appendChild(s);
		window.inlineRan === true`)); err != nil {
		t.Fatal(err)
	}
	ran, err := chromedp.Run(tab, chromedp.Evaluate[bool](`window.inlineRan === true`))
	if err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("an inline script ran: the page has no effective Content-Security-Policy")
	}
	testwait.Until(t, 10*time.Second, func() (bool, string) {
		problems, _, _ := bl.snapshot()
		probe := slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "e2e-probe") })
		refused := slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "Content Security Policy") })
		return probe && refused, fmt.Sprintf("the browser's console error and CSP refusal have not reached the test (probe %v, CSP refusal %v): %q", probe, refused, problems)
	})
}

// screenshot saves what shoot captures as name in the artifact directory.
func screenshot(t *testing.T, tab context.Context, name string, shoot chromedp.Action[[]byte]) {
	t.Helper()
	shot, err := chromedp.Run(tab, shoot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
