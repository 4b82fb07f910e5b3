# SPDX-License-Identifier: Apache-2.0
"""The web console in a real browser (headless Chromium through Selenium)
against a real cloisond with real containers: login by a one-time link,
create, see it running with its address, a terminal, snapshots, stop and
delete, an error shown by its field, a second browser kept live by
events; and its security: nothing without login, cross-site posts and
websockets refused, stale sessions refused, CSRF tokens required.

Each daemon runs in a network namespace of its own (ui_browser.py); the
test's thread joins it, so that the browser reaches the daemon's loopback
and nothing else."""
import http.server
import json
import os
import re
import shutil
import threading
import time

import pytest

import ws_client
from ui_browser import ConsoleDaemon, chromium

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="needs Debian's chromium and chromium-driver (scripts/packages/ui.txt)")

DOCS_IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs", "images")


@pytest.fixture
def console(tmp_path):
    d = ConsoleDaemon(tmp_path)
    d.start()
    yield d
    try:
        d.cleanup_instances()
    finally:
        d.stop()


@pytest.fixture
def browsers(tmp_path, console):
    """Opens browsers on demand; quits them all at the end."""
    opened = []

    def open_one(**kw):
        b = chromium(tmp_path, **kw)
        b.set_page_load_timeout(60)
        opened.append(b)
        return b

    yield open_one
    for b in opened:
        try:
            b.quit()
        except Exception:  # noqa: BLE001 (a browser already gone)
            pass


def wait(browser, cond, timeout=30, what=""):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    # the page redraws what changes: an element may go while it is read
    return WebDriverWait(browser, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: cond(b), message=what)


def css(browser, sel):
    from selenium.webdriver.common.by import By
    return browser.find_element(By.CSS_SELECTOR, sel)


def css_all(browser, sel):
    from selenium.webdriver.common.by import By
    return browser.find_elements(By.CSS_SELECTOR, sel)


def click(browser, sel, timeout=30):
    """Clicks the element, found again if the page redrew it meanwhile
    (an instance's buttons are redrawn on each state change): wait()
    retries a condition that meets a stale element."""
    wait(browser, lambda b: css(b, sel).click() or True, timeout, "click " + sel)


def text_of(browser, sel):
    """The element's text; "" when there is none (or the page just
    redrew it: a wait asks again)."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        els = css_all(browser, sel)
        return els[0].text if els else ""
    except StaleElementReferenceException:
        return ""


def login(browser, console):
    browser.get(console.link())
    wait(browser, lambda b: b.execute_script("return document.body.dataset.ready") == "instances",
         what="the instances table after login")


def shot(browser, name):
    os.makedirs(DOCS_IMAGES, exist_ok=True)
    browser.save_screenshot(os.path.join(DOCS_IMAGES, name))


def confirm_dialog(browser):
    wait(browser, lambda b: b.execute_script("return document.getElementById('confirm').open"))
    css(browser, "#confirm-ok").click()


def has_exec(console):
    return "container_exec" in console.ok("GET", "/1.0")["api_extensions"]


class Terminal:
    """The page's xterm.js terminal: keys in, the screen's text out."""

    def __init__(self, browser):
        self.b = browser
        wait(browser, lambda b: css_all(b, "#terminal .xterm-rows") and
             text_of(b, "#term-status") in ("shell", "console"), what="the terminal")

    def type(self, keys):
        from selenium.webdriver.common.action_chains import ActionChains
        # xterm.js reads keys from a textarea it keeps out of sight
        self.b.execute_script("document.querySelector('#terminal textarea').focus()")
        ActionChains(self.b).send_keys(keys).perform()

    def ctrl(self, key):
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        self.b.execute_script("document.querySelector('#terminal textarea').focus()")
        ActionChains(self.b).key_down(Keys.CONTROL).send_keys(key).key_up(Keys.CONTROL).perform()

    def screen(self):
        return self.b.execute_script(
            "return [...document.querySelectorAll('#terminal .xterm-rows > div')]"
            ".map(r => r.textContent).join('\\n')")

    def run(self, command, expect, timeout=20):
        self.type(command + "\n")
        try:
            wait(self.b, lambda b: re.search(expect, self.screen()), timeout)
        except Exception:
            raise AssertionError("%r on the terminal after %r: %r (status %r)" % (
                expect, command, self.screen(), text_of(self.b, "#term-status")))


def open_shell(browser):
    css(browser, "#open-shell").click()
    return Terminal(browser)


def test_console_end_to_end(console, browsers):
    """Log in with a one-time link, create a container from the built-in
    image, see it running with its address, run a command in its
    terminal, snapshot, change a file, restore it back, stop, delete."""

    b = browsers()
    link = console.link()
    b.get(link)
    wait(b, lambda b: b.execute_script("return document.body.dataset.ready") == "instances")
    assert b.current_url.endswith("/ui/")  # the token is gone from the address bar
    cookies = {c["name"]: c for c in b.get_cookies()}
    assert cookies["cloison_session"]["httpOnly"] and cookies["cloison_session"]["sameSite"] == "Strict"
    assert b.execute_script("return document.cookie") == ""  # HttpOnly: no script reads it
    # the link works once
    st, _, body = console.http("GET", link.split(console.base)[1])
    assert st == 403 and b"does not work" in body

    # create: a container from the built-in image, on the default network
    css(b, "#new-instance").click()
    wait(b, lambda b: css_all(b, "#create-form") and css_all(b, "#networks input"))
    css(b, "#c-name").send_keys("web")
    css(b, "#c-command").send_keys("sleep 1000000")
    css(b, "#c-memory").send_keys("128M")
    shot(b, "ui-create.png")
    css(b, "#create-submit").click()
    wait(b, lambda b: "#/instance/web" in b.current_url)
    wait(b, lambda b: text_of(b, "#fact-state") == "running", 60, "web running")
    wait(b, lambda b: re.search(r"10\.\d+\.\d+\.\d+/\d+", text_of(b, "#fact-ips")), 30, "its IP")
    ip = re.search(r"10\.\d+\.\d+\.\d+", text_of(b, "#fact-ips")).group(0)
    # the table shows it too, with its address
    b.get(console.base + "/ui/#/instances")
    wait(b, lambda b: "running" in text_of(b, 'tr[data-name="web"]')
         and ip in text_of(b, 'tr[data-name="web"]'), what="web in the table with its IP")
    shot(b, "ui-instances.png")
    b.get(console.base + "/ui/#/instance/web")
    wait(b, lambda b: text_of(b, "#fact-state") == "running")

    if has_exec(console):
        # a shell in the page: a command's output, Ctrl-C, a file to go back to
        term = open_shell(b)
        term.run("echo hello-$((6*7))", r"hello-42")
        term.type("sleep 300\n")
        time.sleep(0.5)
        term.ctrl("c")
        # (each expected output differs from the command's own echo)
        term.run("echo after-ctrl-$((1+1))", r"after-ctrl-2")
        term.run("echo before > /root/state.txt && tr a-z A-Z < /root/state.txt", r"BEFORE")
        shot(b, "ui-instance.png")
        change = lambda text: term.run(  # noqa: E731
            "echo %s > /root/state.txt && tr a-z A-Z < /root/state.txt" % text, text.upper())
    else:
        # no exec API on this daemon: the file is changed in the stopped
        # container's own layer instead (and the terminal is untested)
        upper = os.path.join(console.root, "instances", "web", "upper", "root")
        click(b, "#act-stop")
        wait(b, lambda b: text_of(b, "#fact-state") == "stopped", 60, "web stopped")

        def change(text):
            os.makedirs(upper, exist_ok=True)
            with open(os.path.join(upper, "state.txt"), "w") as f:
                f.write(text + "\n")
        change("before")
        shot(b, "ui-instance.png")

    # snapshot, change the file, restore, see the file back
    css(b, "#snap-name").send_keys("s1")
    css(b, "#snap-create").click()
    wait(b, lambda b: css_all(b, '#snapshots li[data-snapshot="s1"]'), 60, "snapshot s1 listed")
    change("after")
    css(b, '#snapshots li[data-snapshot="s1"] button[data-action="restore"]').click()
    confirm_dialog(b)
    wait(b, lambda b: "Restore s1: done" in text_of(b, "#op-status"), 90, "restore done")
    if has_exec(console):
        wait(b, lambda b: text_of(b, "#fact-state") == "running", 60)
        if css_all(b, "#term-close"):
            css(b, "#term-close").click()
        term = open_shell(b)
        term.run("tr a-z A-Z < /root/state.txt", r"BEFORE")
        # stop, then delete (with its confirmation)
        click(b, "#act-stop")
        wait(b, lambda b: text_of(b, "#fact-state") == "stopped", 60, "web stopped")
    else:
        with open(os.path.join(upper, "state.txt")) as f:
            assert f.read() == "before\n"
    click(b, "#act-delete")
    confirm_dialog(b)
    wait(b, lambda b: b.current_url.endswith("#/instances"), 60)
    wait(b, lambda b: not css_all(b, 'tr[data-name="web"]'), 30, "web gone from the table")
    assert console.unix("GET", "/1.0/instances/web")[0] == 404
    if not has_exec(console):
        pytest.skip("all but the terminal checked: this daemon has no exec websockets "
                    "(container_exec)")


def test_refused_create_shows_the_error_by_its_field(console, browsers):
    b = browsers()
    login(b, console)
    b.get(console.base + "/ui/#/create")
    wait(b, lambda b: css_all(b, "#c-memory"))
    css(b, "#c-name").send_keys("bad")
    css(b, "#c-memory").send_keys("lots")
    css(b, "#create-submit").click()
    wait(b, lambda b: text_of(b, "#c-memory-error"), what="the memory field's error")
    assert "limits.memory" in text_of(b, "#c-memory-error")
    assert css(b, "#c-memory").get_attribute("aria-invalid") == "true"
    assert text_of(b, "#c-name-error") == "" and text_of(b, "#create-error") == ""
    assert b.switch_to.active_element == css(b, "#c-memory")
    shot(b, "ui-create-error.png")
    # a bad name: by the name field
    css(b, "#c-memory").clear()
    css(b, "#c-name").clear()
    css(b, "#c-name").send_keys("no/slash")
    css(b, "#create-submit").click()
    wait(b, lambda b: text_of(b, "#c-name-error"), what="the name field's error")
    assert text_of(b, "#c-memory-error") == ""
    assert console.unix("GET", "/1.0/instances")[1]["metadata"] == []


def test_a_second_browser_sees_changes_live(console, browsers):
    """Changes made in one browser (and by the API) appear in another
    one's table without a reload: the events websocket."""
    one, two = browsers(), browsers()
    login(one, console)
    login(two, console)
    two.execute_script("window.__marker = 42")  # gone if the page reloads
    # made by the first browser's create form
    one.get(console.base + "/ui/#/create")
    wait(one, lambda b: css_all(b, "#networks input"))
    css(one, "#c-name").send_keys("live1")
    css(one, "#c-command").send_keys("sleep 1000000")
    css(one, "#net-none").click()
    css(one, "#create-submit").click()
    wait(two, lambda b: "running" in text_of(b, 'tr[data-name="live1"]'), 60,
         "live1 running in the second browser")
    # stopped by the first browser
    one.get(console.base + "/ui/#/instance/live1")
    wait(one, lambda b: text_of(b, "#fact-state") == "running")
    css(one, "#act-stop").click()
    wait(two, lambda b: "stopped" in text_of(b, 'tr[data-name="live1"]'), 60,
         "live1 stopped in the second browser")
    # deleted through the API, not a browser
    console.ok("DELETE", "/1.0/instances/live1")
    wait(two, lambda b: not css_all(b, 'tr[data-name="live1"]'), 30)
    assert two.execute_script("return window.__marker") == 42
    # the event log page lists them
    two.get(console.base + "/ui/#/events")
    assert "live" in text_of(two, "#live")


def test_pages_render_for_screenshots(console, browsers):
    """Images, networks and events pages, and the login page, render
    (and are the docs' screenshots)."""
    b = browsers()
    login(b, console)
    b.get(console.base + "/ui/#/networks")
    wait(b, lambda b: css_all(b, "#net-form"))
    css(b, "#net-name").send_keys("uinet")
    css(b, "#net-subnet").send_keys("10.123.7.0/24")
    css(b, "#net-form button[type=submit]").click()
    wait(b, lambda b: css_all(b, 'tr[data-name="uinet"]'), 30)
    shot(b, "ui-networks.png")
    css(b, 'tr[data-name="uinet"] button').click()
    confirm_dialog(b)
    wait(b, lambda b: not css_all(b, 'tr[data-name="uinet"]'), 30)
    b.get(console.base + "/ui/#/images")
    wait(b, lambda b: "busybox" in text_of(b, "#image-rows"), 30)
    shot(b, "ui-images.png")
    b.get(console.base + "/ui/#/events")
    wait(b, lambda b: "network-deleted" in text_of(b, "#event-list") or True)
    # a phone's screen: the same table, fewer columns
    phone = browsers(width=390, height=844)
    login(phone, console)
    shot(phone, "ui-phone.png")
    # logout: the session is gone, the page says how to log in
    css(b, "#logout").click()
    wait(b, lambda b: "Log in to cloison" in b.page_source, 20)
    shot(b, "ui-login.png")


# ---- security ----

def session_cookie(console):
    """A session made the way a browser makes one: (cookie, csrf)."""
    st, h, _ = console.http("GET", console.link().split(console.base)[1])
    assert st == 303 and h["Location"] == "/ui/"
    cookie = h["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in h["Set-Cookie"] and "SameSite=Strict" in h["Set-Cookie"]
    st, _, body = console.http("GET", "/ui/session", {"Cookie": cookie})
    assert st == 200
    return cookie, json.loads(body)["metadata"]["csrf_token"]


def test_nothing_without_login(console):
    for path in ("/ui/", "/ui", "/ui/index.html", "/ui/style.css", "/ui/session"):
        st, _, body = console.http("GET", path)
        assert st == 401, (path, st, body)
    # the API without a session or a trusted certificate: the TLS trust
    # rules (docs/remotes.md): server info without secrets, 403 for the rest
    for path in ("/1.0/instances", "/1.0/events", "/1.0/metrics"):
        st, _, body = console.http("GET", path)
        assert st == 403 and b"not trusted" in body, (path, st, body)
    st, _, body = console.http("GET", "/1.0")
    info = json.loads(body)["metadata"]
    assert st == 200 and info["auth"] == "untrusted" and "config" not in info
    st, _, body = console.http("GET", "/ui/")
    assert b"cloison ui-link" in body  # the login page says how
    st, _, _ = console.http("POST", "/1.0/instances", {"Content-Type": "application/json"},
                            json.dumps({"name": "x", "source": {"type": "image",
                                                                 "image": "busybox"}}))
    assert st == 403
    # a made-up token, or a cookie no session has
    assert console.http("GET", "/ui/login?token=" + "ab" * 32)[0] == 403
    assert console.http("GET", "/1.0/instances", {"Cookie": "cloison_session=" + "cd" * 32})[0] == 401
    # over the Unix socket (root's, mode 0660) the API needs no login
    assert console.unix("GET", "/1.0/instances")[0] == 200


def test_files_are_served_as_built(console):
    cookie, _ = session_cookie(console)
    st, h, html = console.http("GET", "/ui/", {"Cookie": cookie, "Accept-Encoding": "gzip"})
    assert st == 200 and h["Content-Type"].startswith("text/html")
    assert h["Content-Encoding"] == "gzip" and h["Cache-Control"] == "no-cache"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert h["Referrer-Policy"] == "no-referrer"
    import gzip
    html = gzip.decompress(html).decode()
    js = re.search(r'src="(js/app\.[0-9a-f]{12}\.js)"', html).group(1)
    st, h, body = console.http("GET", "/ui/" + js, {"Cookie": cookie})
    assert st == 200 and h["Content-Type"].startswith("text/javascript")
    assert "immutable" in h["Cache-Control"] and "Content-Encoding" not in h
    for bad in ("/ui/../api.sock", "/ui/.hidden", "/ui/js/../../x", "/ui/nope.js"):
        assert console.http("GET", bad, {"Cookie": cookie})[0] == 404, bad


def test_cross_site_requests_are_refused(console, browsers, tmp_path):
    """A page of another origin that posts a form to the API, with the
    user logged in: refused, and nothing changes.  The same with curl-like
    requests: a foreign Origin, no CSRF token, a wrong one."""
    cookie, csrf = session_cookie(console)
    console.ok("POST", "/1.0/instances", {"name": "target", "no_network": True,
                                          "source": {"type": "image", "image": "busybox"},
                                          "command": ["sleep", "100000"]})
    snap = "/1.0/instances/target/snapshots"
    post = lambda headers: console.http(  # noqa: E731
        "POST", snap, dict({"Cookie": cookie, "Content-Type": "application/json"}, **headers),
        json.dumps({"name": "evil"}))[0]
    assert post({}) == 403                                   # no token
    assert post({"X-CSRF-Token": "0" * 64}) == 403           # a wrong one
    assert post({"X-CSRF-Token": csrf, "Origin": "http://evil.example"}) == 403
    assert console.unix("GET", snap)[1]["metadata"] == []

    # a real cross-site form post, from a page on another origin (another
    # port of the same loopback: same site, so even SameSite=Strict lets
    # the cookie go; the Origin check is what refuses it)
    evil_html = ("<html><body><form id=f method=POST action='%s/1.0/instances/target/snapshots' "
                 "enctype='text/plain'><input name='{\"name\":\"evil\",\"x\":\"' value='\"}'>"
                 "</form><script>document.getElementById('f').submit()</script></body></html>"
                 % console.base)

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(evil_html.encode())

        def log_message(self, *a):
            pass

    # threads: the browser opens spare connections that send nothing, on
    # which a one-thread server would sit until shutdown
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        b = browsers()
        login(b, console)
        b.get("http://127.0.0.1:%d/" % srv.server_address[1])
        wait(b, lambda b: b.current_url.startswith(console.base), 20, "the form posted")
        wait(b, lambda b: "error" in b.page_source, 20)
        assert re.search(r"403|cross-origin|401", b.page_source), b.page_source
        # the snapshot was not made, and the user's own session still works
        assert console.unix("GET", snap)[1]["metadata"] == []
        b.get(console.base + "/ui/#/instances")
        wait(b, lambda b: "running" in text_of(b, 'tr[data-name="target"]'))
    finally:
        srv.shutdown()


def ws_handshake(console, path, headers):
    s = console.connect()
    head = ws_client.handshake(s, path, console.base.split("//")[1], headers.items())
    s.close()
    return int(head.split()[1])


def test_websockets_refuse_other_origins(console):
    cookie, _ = session_cookie(console)
    console.ok("POST", "/1.0/instances", {"name": "wst", "no_network": True,
                                          "source": {"type": "image", "image": "busybox"},
                                          "command": ["sleep", "100000"]})
    ours = console.base
    paths = ["/1.0/events"]
    if has_exec(console):
        paths.append("/1.0/instances/wst/console?width=80&height=24")
    for path in paths:
        assert ws_handshake(console, path, {"Cookie": cookie, "Origin": "http://evil.example"}) == 403
        assert ws_handshake(console, path, {"Cookie": cookie, "Origin": "null"}) == 403
        assert ws_handshake(console, path, {"Origin": ours}) == 403  # no session: not trusted
        assert ws_handshake(console, path, {"Cookie": cookie, "Origin": ours}) == 101, path


def test_stale_sessions_are_refused(console, tmp_path):
    # logged out: the cookie no longer opens anything
    cookie, csrf = session_cookie(console)
    assert console.http("GET", "/1.0/instances", {"Cookie": cookie})[0] == 200
    st, h, _ = console.http("POST", "/ui/logout", {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert st == 200 and "Max-Age=0" in h["Set-Cookie"]
    st, _, body = console.http("GET", "/1.0/instances", {"Cookie": cookie})
    assert st == 401 and b"ended" in body
    # a session cannot make itself new links
    cookie, csrf = session_cookie(console)
    st, _, _ = console.http("POST", "/1.0/ui/links", {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert st == 403
    # idle past --ui-session-timeout: expired
    short = ConsoleDaemon(tmp_path / "short", ["--ui-session-timeout", "2"])
    os.makedirs(short.dir)
    console.leave()
    short.start()
    try:
        cookie, _ = session_cookie(short)
        assert short.http("GET", "/1.0/instances", {"Cookie": cookie})[0] == 200
        time.sleep(3.2)
        assert short.http("GET", "/1.0/instances", {"Cookie": cookie})[0] == 401
    finally:
        short.stop()
        console.enter()


LABELS_JS = """
const bad = [];
for (const e of document.querySelectorAll('input, select, textarea')) {
  if (e.type === 'hidden') continue;
  if (!(e.labels && e.labels.length) && !e.getAttribute('aria-label')) bad.push(e.outerHTML.slice(0, 80));
}
for (const e of document.querySelectorAll('button, a[href]')) {
  if (!(e.textContent.trim() || e.getAttribute('aria-label'))) bad.push(e.outerHTML.slice(0, 80));
}
return bad;
"""


def test_keyboard_and_labels(console, browsers):
    """Every control has a name a screen reader can say, and the
    instances page is walked with Tab and Enter alone."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    console.ok("POST", "/1.0/instances", {"name": "kbd", "no_network": True,
                                          "source": {"type": "image", "image": "busybox"},
                                          "command": ["sleep", "100000"]})
    b = browsers()
    login(b, console)
    for page, sel in (("#/instances", 'tr[data-name="kbd"]'), ("#/create", "#create-form"),
                      ("#/instance/kbd", "#snap-form"), ("#/images", "#pull-form"),
                      ("#/networks", "#net-form"), ("#/events", "#event-list")):
        b.get(console.base + "/ui/" + page)
        wait(b, lambda b: css_all(b, sel), what=page)
        assert b.execute_script(LABELS_JS) == [], page
    # Tab from the top of the instances page reaches the filter, the
    # create button, the sort buttons and the instance's link; Enter opens it
    b.get(console.base + "/ui/#/instances")
    wait(b, lambda b: css_all(b, 'tr[data-name="kbd"] a'))
    seen = []
    for _ in range(25):
        ActionChains(b).send_keys(Keys.TAB).perform()
        seen.append(b.execute_script(
            "const e = document.activeElement; return e.id || e.dataset.key || e.textContent.trim()"))
        if seen[-1] == "kbd":
            break
    assert "new-instance" in seen and "filter" in seen and "name" in seen and seen[-1] == "kbd", seen
    ActionChains(b).send_keys(Keys.ENTER).perform()
    wait(b, lambda b: "#/instance/kbd" in b.current_url and text_of(b, "#fact-state") == "running")


def test_freeze_button_freezes_and_unfreezes(console, browsers):
    """The instance page's Freeze button freezes it (docs/freeze.md), the
    Unfreeze button that takes its place thaws it; the shell waits."""
    console.ok("POST", "/1.0/instances", {"name": "icy", "no_network": True,
                                          "source": {"type": "image", "image": "busybox"},
                                          "command": ["sleep", "100000"]})
    b = browsers()
    login(b, console)
    b.get(console.base + "/ui/#/instance/icy")
    wait(b, lambda b: text_of(b, "#fact-state") == "running", what="icy running")
    wait(b, lambda b: css(b, "#act-freeze").is_enabled(), what="freeze enabled")
    click(b, "#act-freeze")
    wait(b, lambda b: text_of(b, "#fact-state") == "frozen", 60, "icy frozen")
    assert console.ok("GET", "/1.0/instances/icy/state")["status"] == "frozen"
    assert not css(b, "#open-shell").is_enabled() and css(b, "#act-stop").is_enabled()
    wait(b, lambda b: css(b, "#act-unfreeze").is_enabled(), what="unfreeze enabled")
    click(b, "#act-unfreeze")
    wait(b, lambda b: text_of(b, "#fact-state") == "running", 60, "icy running again")
    assert console.ok("GET", "/1.0/instances/icy/state")["status"] == "running"
