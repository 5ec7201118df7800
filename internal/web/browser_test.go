package web_test

// The page in real headless Chromium, driven with chromedp.
//
// The scenario (checkPage) and the screenshot (screenshotPage) take a
// roomUnderTest: the page's URL and a way to make the "other users". Here
// they run against fakeRoom and against the real chat server (realRoom),
// whose other users are TCP users; nothing else changes. The file is in package web_test, using
// only the exported API, so that it may import the chat server (which
// imports this package) without an import cycle.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"netchat/internal/syncbuf"
)

var updateScreenshot = flag.Bool("update-screenshot", false,
	"TestScreenshot also writes the screenshot to docs/web.png")

// browserWait bounds each wait for the browser: Chromium shares the
// machine with the race-detected test suite.
const browserWait = 30 * time.Second

// chatPeer is another user of the room the page is in.
type chatPeer interface {
	// Send sends one protocol line.
	Send(line string)
	// Expect reads lines until this one arrives (lines before it are
	// skipped) and fails the test if it does not.
	Expect(line string)
	// Close drops the connection without /quit, like a closed tab.
	Close()
}

// roomUnderTest is what the browser tests need from a chat server.
type roomUnderTest struct {
	pageURL string
	// join connects another user as nick and returns once the room
	// welcomed it.
	join func(t *testing.T, nick string) chatPeer
	// dropAll, if not nil, makes the server end every session as at
	// shutdown (a last "* server shutting down" line, then a normal close)
	// and keep serving new ones; the page must show it and reconnect.
	dropAll func()
}

func fakeRoomUnderTest(t *testing.T, name string) roomUnderTest {
	room, pageURL := startFakeRoom(t, name)
	return roomUnderTest{
		pageURL: pageURL,
		join:    func(t *testing.T, nick string) chatPeer { return joinWS(t, pageURL, nick) },
		dropAll: room.shutdown,
	}
}

// chromiumPath finds Chromium. Without one the browser tests skip, unless
// NETCHAT_REQUIRE_BROWSER=1 (CI sets it), where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium binary (chromium, chromium-browser or google-chrome) on PATH: the browser test needs one (Debian: apt-get install chromium)"
	if os.Getenv("NETCHAT_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "; NETCHAT_REQUIRE_BROWSER=1 makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// tab is one page in a headless Chromium of its own, with a record of what
// must never happen on the page.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	dialogs    []string
	exceptions []string
}

// cspProbe runs before the page's scripts and counts CSP violations, which
// would show inline code (or an injected element) that the page tried to
// run.
const cspProbe = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sample || ''));
});`

func newTab(t *testing.T, width, height int64) *tab {
	t.Helper()
	exe := chromiumPath(t)
	out := &syncbuf.Buffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(width), int(height)),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// Cleanups run last-registered first: the browser is gone before its
	// profile directory is removed.
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out)
		}
	})
	b := &tab{t: t, ctx: ctx}
	start, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	go func() {
		<-start.Done()
		if start.Err() == context.DeadlineExceeded {
			cancelCtx()
		}
	}()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a timeout
		t.Fatalf("starting %s: %v\n%s", exe, err, out)
	}
	cancel()
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatal(err)
	}
	b.do(
		chromedp.EmulateViewport(width, height),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
				page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})
			return err
		}),
	)
	return b
}

// record runs in chromedp's event loop: it only notes what happened. A
// dialog would block the page, so it is dismissed from another goroutine.
func (b *tab) record(ev any) {
	switch ev := ev.(type) {
	case *page.EventJavascriptDialogOpening:
		b.mu.Lock()
		b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
		b.mu.Unlock()
		go func() {
			_, _ = chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}()
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		b.mu.Lock()
		b.exceptions = append(b.exceptions, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, text))
		b.mu.Unlock()
	}
}

// checkClean fails the test if the page opened a dialog, threw an
// uncaught exception or violated its CSP.
func (b *tab) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	dialogs, exceptions := slices.Clone(b.dialogs), slices.Clone(b.exceptions)
	b.mu.Unlock()
	if len(dialogs) > 0 {
		b.t.Errorf("the page opened JavaScript dialogs: %q", dialogs)
	}
	if len(exceptions) > 0 {
		b.t.Errorf("the page threw: %q", exceptions)
	}
	if v := eval[[]string](b, `window.__csp`); len(v) > 0 {
		b.t.Errorf("Content-Security-Policy violations: %q", v)
	}
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// lines is the text of the log's lines, without their time stamps.
func (b *tab) lines() []string {
	return eval[[]string](b, `Array.from(document.querySelectorAll('#log .line .text'), (e) => e.textContent)`)
}

// pageState is what the page shows besides the log.
type pageState struct {
	State     string   `json:"state"`
	Count     string   `json:"count"`
	Online    []string `json:"online"`
	Reconnect bool     `json:"reconnect"`
	Input     string   `json:"input"`
	Prompt    string   `json:"prompt"`
	Title     string   `json:"title"`
}

func (b *tab) state() pageState {
	return eval[pageState](b, `({
		state: document.getElementById('state').dataset.state,
		count: document.getElementById('online-count').textContent,
		online: Array.from(document.querySelectorAll('#people-list li'), (e) => e.textContent),
		reconnect: !document.getElementById('reconnect').hidden,
		input: document.getElementById('input').value,
		prompt: document.getElementById('input').placeholder,
		title: document.title,
	})`)
}

// waitFor polls cond until it holds; on timeout it shows the page.
func (b *tab) waitFor(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(browserWait)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: the page shows %+v and the lines\n%s", what, b.state(), strings.Join(b.lines(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *tab) waitLine(line string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("the line %q", line), func() bool { return slices.Contains(b.lines(), line) })
}

func (b *tab) waitLinePrefix(prefix string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("a line starting %q", prefix), func() bool {
		return slices.ContainsFunc(b.lines(), func(l string) bool { return strings.HasPrefix(l, prefix) })
	})
}

func (b *tab) waitState(state string) {
	b.t.Helper()
	b.waitFor("state "+state, func() bool { return b.state().State == state })
}

// waitOnline waits until the list shows exactly these users, in this
// order, and the count agrees.
func (b *tab) waitOnline(nicks ...string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("online %q", nicks), func() bool {
		s := b.state()
		return slices.Equal(s.Online, nicks) && s.Count == fmt.Sprint(len(nicks))
	})
}

// typeLine types text into the input line and presses Enter.
func (b *tab) typeLine(text string) {
	b.t.Helper()
	b.do(chromedp.SendKeys(chromedp.ID("input"), text+"\r"))
}

func (b *tab) screenshot(name string) ([]byte, string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.t.TempDir(), name)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return img, path
}

const xss = `<img src=x onerror="document.title='pwned'">`

// checkPage is the page's scenario, against any room.
func checkPage(t *testing.T, room roomUnderTest) {
	b := newTab(t, 1000, 680)
	b.do(chromedp.Navigate(room.pageURL))
	b.waitState("connected")
	b.waitLinePrefix("Welcome to netchat (")
	if s := b.state(); s.Prompt != "Choose a nickname" || s.Count != "0" {
		t.Errorf("before joining the page shows %+v", s)
	}

	// The first line typed is the nickname; a refused one may be retried.
	bob := room.join(t, "bob")
	b.typeLine("bob")
	b.waitLine("! nickname taken: bob")
	if s := b.state(); s.Prompt != "Choose a nickname" {
		t.Errorf("after a refused nickname the input asks %q", s.Prompt)
	}
	b.typeLine("alice")
	b.waitLine("* Welcome, alice! 2 users online. Type /help for commands.")
	bob.Expect("* alice joined (2 online)")
	// The page asked /who by itself to fill the list and did not show the
	// reply.
	b.waitOnline("alice", "bob")
	if s := b.state(); s.Prompt != "Message, or /help" {
		t.Errorf("after joining the input asks %q", s.Prompt)
	}
	if slices.ContainsFunc(b.lines(), func(l string) bool { return strings.HasPrefix(l, "* 2 online:") }) {
		t.Errorf("the page's own /who reply is shown: %q", b.lines())
	}

	// Messages both ways; the page shows its own as the others see it.
	b.typeLine("hello bob")
	bob.Expect("alice: hello bob")
	b.waitLine("alice: hello bob")
	if n := eval[int](b, `document.querySelectorAll('#log .line.own').length`); n != 1 {
		t.Errorf("%d own lines, want 1", n)
	}
	bob.Send("hi alice")
	b.waitLine("bob: hi alice")

	// Hostile text is text: nothing is parsed as HTML, nothing runs.
	title := b.state().Title
	bob.Send(xss)
	bob.Send("<script>alert('pwned')</script>")
	bob.Send("<b>bold?</b> &amp; &lt;")
	bob.Send("marker")
	b.waitLine("bob: marker")
	lines := b.lines()
	for _, want := range []string{"bob: " + xss, "bob: <script>alert('pwned')</script>", "bob: <b>bold?</b> &amp; &lt;"} {
		if !slices.Contains(lines, want) {
			t.Errorf("the page does not show %q literally; lines:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if n := eval[int](b, `document.querySelectorAll('#log img, #log script, #log b').length`); n != 0 {
		t.Errorf("%d elements were made from message text", n)
	}
	if got := b.state().Title; got != title {
		t.Errorf("the title changed from %q to %q", title, got)
	}

	// /me is shown as the others see it; //text is sent as is.
	b.typeLine("/me waves")
	bob.Expect("* alice waves")
	b.waitLine("* alice waves")
	b.typeLine("//etc/hosts is a file")
	bob.Expect("alice: /etc/hosts is a file")
	b.waitLine("alice: /etc/hosts is a file")

	// The list follows joins, renames and leaves.
	carol := room.join(t, "carol")
	b.waitLine("* carol joined (3 online)")
	b.waitOnline("alice", "bob", "carol")
	b.typeLine("/nick zoe")
	b.waitLine("* alice is now known as zoe")
	bob.Expect("* alice is now known as zoe")
	b.waitOnline("bob", "carol", "zoe")
	b.typeLine("b:renamed")
	bob.Expect("zoe: renamed")
	b.waitLine("zoe: renamed")

	// Private messages both ways; the room echoes the sender's.
	b.typeLine("/msg bob psst")
	bob.Expect("[private] zoe: psst")
	b.waitLine("[private to bob] psst")
	carol.Send("c:zoe:hello zoe")
	b.waitLine("[private] carol: hello zoe")

	carol.Send("/quit lunch")
	b.waitLine("* carol left (2 online): lunch")
	b.waitOnline("bob", "zoe")
	bob.Close()
	b.waitLine("* bob left (1 online)")
	b.waitOnline("zoe")

	// /who typed by the user is shown.
	b.typeLine("/who")
	b.waitLine("* 1 online: zoe")
	// Only broadcasts and /me were added locally: the nickname attempts,
	// /nick, /msg and /who were answered by the room.
	own := eval[[]string](b, `Array.from(document.querySelectorAll('#log .line.own .text'), (e) => e.textContent)`)
	if want := []string{"alice: hello bob", "* alice waves", "alice: /etc/hosts is a file", "zoe: renamed"}; !slices.Equal(own, want) {
		t.Errorf("own lines %q, want %q", own, want)
	}
	b.screenshot("page.png")

	// On a phone the list is a panel opened from the bar.
	b.do(chromedp.EmulateViewport(390, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	peopleShown := `getComputedStyle(document.getElementById('people')).display !== 'none'`
	if eval[bool](b, peopleShown) {
		t.Error("on a phone the list of people covers the messages from the start")
	}
	if w := eval[float64](b, `document.getElementById('log').getBoundingClientRect().width`); w < 350 {
		t.Errorf("on a phone the messages are only %vpx wide", w)
	}
	b.do(chromedp.Click(chromedp.ID("people-toggle")))
	if !eval[bool](b, peopleShown) {
		t.Error("the people button does not open the list on a phone")
	}
	b.screenshot("page-phone.png")
	b.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	if bg := eval[string](b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(22, 23, 27)" {
		t.Errorf("with prefers-color-scheme: dark the background is %s", bg)
	}
	b.screenshot("page-phone-dark.png")
	b.do(chromedp.Click(chromedp.ID("people-toggle")))
	if eval[bool](b, peopleShown) {
		t.Error("the people button does not close the list on a phone")
	}
	b.do(chromedp.EmulateViewport(1000, 680))

	if room.dropAll != nil {
		greetings := func() int {
			n := 0
			for _, l := range b.lines() {
				if strings.HasPrefix(l, "Welcome to netchat (") {
					n++
				}
			}
			return n
		}
		room.dropAll()
		b.waitLine("* server shutting down")
		b.waitState("disconnected")
		b.waitLine("-- disconnected")
		if s := b.state(); !s.Reconnect || s.Count != "0" || len(s.Online) != 0 {
			t.Errorf("disconnected, the page shows %+v", s)
		}
		b.do(chromedp.Click(chromedp.ID("reconnect")))
		b.waitState("connected")
		b.waitFor("a second greeting", func() bool { return greetings() == 2 })
		// The last nickname is offered again.
		b.waitFor("the nickname offered", func() bool { return b.state().Input == "zoe" })
		b.do(chromedp.SendKeys(chromedp.ID("input"), "\r"))
		b.waitLine("* Welcome, zoe! 1 users online. Type /help for commands.")
		b.waitOnline("zoe")
	}
	b.checkClean()
}

// screenshotPage puts the page in use for a picture: three other users (on
// TCP with the real server), a few messages, a /me and a private message,
// and a line being typed.
func screenshotPage(t *testing.T, room roomUnderTest) []byte {
	bob := room.join(t, "bob")
	carol := room.join(t, "carol")
	bob.Expect("* carol joined (2 online)")
	b := newTab(t, 960, 560)
	b.do(chromedp.Navigate(room.pageURL))
	b.waitState("connected")
	b.waitLinePrefix("Welcome to netchat (")
	b.typeLine("alice")
	b.waitLinePrefix("* Welcome, alice! ")
	b.waitOnline("alice", "bob", "carol")
	bob.Expect("* alice joined (3 online)")
	carol.Expect("* alice joined (3 online)")

	carol.Send("morning all ☕")
	b.waitLine("carol: morning all ☕")
	b.typeLine("hi! is this the same room as the telnet people?")
	bob.Expect("alice: hi! is this the same room as the telnet people?")
	bob.Send("it is: I'm on nc, carol uses netchat join")
	b.waitLine("bob: it is: I'm on nc, carol uses netchat join")
	bob.Send("/me waves")
	b.waitLine("* bob waves")
	carol.Send("/msg alice welcome aboard, try /help")
	b.waitLine("[private] carol: welcome aboard, try /help")
	b.typeLine("/me waves back")
	b.waitLine("* alice waves back")
	dave := room.join(t, "dave")
	b.waitLine("* dave joined (4 online)")
	b.waitOnline("alice", "bob", "carol", "dave")
	dave.Send("what did I miss?")
	b.waitLine("dave: what did I miss?")
	b.do(chromedp.SendKeys(chromedp.ID("input"), "not much, dave"))
	b.checkClean()
	img, _ := b.screenshot("web.png")
	return img
}

// TestPage runs the page's scenario against the fake room, which checks
// the page alone (TestPageRealServer runs it against the chat server).
func TestPage(t *testing.T) {
	t.Parallel()
	checkPage(t, fakeRoomUnderTest(t, "fake"))
}

// TestScreenshot takes the README's picture of the page in use; with
// -update-screenshot it also writes it to docs/web.png:
//
//	go test ./internal/web -run TestScreenshot -args -update-screenshot
func TestScreenshot(t *testing.T) {
	t.Parallel()
	img := screenshotPage(t, startRealRoom(t, "demo").underTest())
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != 960 || cfg.Height != 560 {
		t.Fatalf("screenshot: %v, %dx%d; want a 960x560 PNG", err, cfg.Width, cfg.Height)
	}
	if *updateScreenshot {
		path := filepath.Join("..", "..", "docs", "web.png")
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}
