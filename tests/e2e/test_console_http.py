"""The web console over real HTTP: a real ``flywheel serve`` (``--no-watch``: no iteration runs)
on a real reconciled git + DVC repository, driven with ``http.client`` (no browser, no mocks).

Pages and their security headers, the CSRF token and Origin check on every action, the Host
check against DNS rebinding, sign-in when the server has credentials (and SigV4 still on the
JSON API), escaping of caller text, Create dataset's checks, Run flywheel's refusal, the list's
pages and filters, the 404s, the live JSON and the form size limit.

One server for the module over one repository with flywheel ``sections`` (one completed
iteration, no active model), a flywheel ``descr`` whose dataset description is hostile HTML, a
spec that does not load because its name is a script, and 120 more flywheels without data; the
tests that write (pin, dataset) run after the ones that only read.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from api_harness import ApiServer, commits, reconciled_repo, train_rows
from botocore.exceptions import ClientError
from conftest import commit, git, run_cli

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = '"><script>alert(1)</script>'
BULK = 120
#: sections, descr, the spec that does not load, and the bulk ones.
TOTAL = 3 + BULK
DESCR_SPEC = f"""\
apiVersion: flywheel-reconciler/v1
name: descr
task:
  mode: MULTI_CLASS
  labels: [database, games, mail, sound]
datasets:
  - name: train-1
    type: TRAIN
    path: data/sections/train-1.csv
    description: '{IMG} {SCRIPT}'
"""
EVIL_SPEC = """\
apiVersion: flywheel-reconciler/v1
name: '<script>alert(1)</script>'
task:
  mode: MULTI_CLASS
  labels: [a, b]
"""
BULK_SPEC = """\
apiVersion: flywheel-reconciler/v1
name: {name}
task:
  mode: MULTI_CLASS
  labels: [a, b]
"""
CREDENTIALS = "[default]\naws_access_key_id = AKIDCONSOLE\naws_secret_access_key = s3cret\n"
TOKEN = re.compile(r'name="csrf" value="([^"]+)"')
ROW = re.compile(r'<th scope="row"><a href="(/flywheels/[^"]+)">')


# HTTP, by hand ----------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def cookie(self) -> str | None:
        """The session cookie this answer sets, if any."""
        for value in self.headers.get_all("set-cookie") or []:
            name, _, rest = value.partition("=")
            if name.strip() == "flywheel_session":
                return rest.split(";", 1)[0]
        return None

    @property
    def token(self) -> str:
        found = TOKEN.search(self.text)
        assert found, self.text[:2000]
        return found.group(1)


def call(port: int, method: str, path: str, *, body: bytes | None = None,
         headers: dict[str, str] | None = None, cookie: str | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        sent = dict(headers or {})
        if cookie is not None:
            sent["Cookie"] = f"flywheel_session={cookie}"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Answer(response.status, response.headers,
                      response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def form(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def multipart(fields: dict[str, str],
              file: tuple[str, bytes] | None) -> tuple[bytes, dict[str, str]]:
    boundary = "----console" + secrets.token_hex(8)
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                  f"{value}\r\n".encode())
    if file is not None:
        filename, content = file
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                  f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode())
        out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode()


def data_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "data").rglob("*") if p.is_file()}


def table_rows(page: Answer) -> list[str]:
    """The links of the list's rows (a spec that does not load under its file's path has
    none: see row_count)."""
    return ROW.findall(page.text)


def row_count(page: Answer) -> int:
    return page.text.count('<th scope="row">')


# the server -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = reconciled_repo(tmp_path_factory.mktemp("console") / "repo")
    (root / "specs/descr.yaml").write_text(DESCR_SPEC, "utf-8")
    (root / "specs/evil.yaml").write_text(EVIL_SPEC, "utf-8")
    for number in range(BULK):
        name = f"bulk-{number:03d}"
        (root / f"specs/{name}.yaml").write_text(BULK_SPEC.format(name=name), "utf-8")
    commit(root, "more flywheels for the console")
    with ApiServer(root, watch=False) as running:
        yield running


@pytest.fixture(scope="module")
def session(server: ApiServer) -> str:
    cookie = call(server.port, "GET", "/").cookie
    assert cookie
    return cookie


def page(server: ApiServer, path: str, session: str | None = None) -> Answer:
    return call(server.port, "GET", path, cookie=session)


def iteration_id(server: ApiServer, session: str) -> str:
    found = re.search(r'href="/flywheels/sections/iterations/([^"/]+)"',
                      page(server, "/flywheels/sections", session).text)
    assert found
    return found.group(1)


# pages --------------------------------------------------------------------------------------


def external_links(html: str) -> list[str]:
    attributes = re.findall(r'\b(?:src|href|action|srcset|poster|data)\s*=\s*["\']([^"\']*)',
                            html, re.IGNORECASE)
    return [a for a in attributes if re.match(r"\s*(?:[a-z][a-z0-9+.-]*:|//)", a, re.I)
            and not a.startswith("data:")]


def test_every_page_is_html_with_the_security_headers(server: ApiServer, session: str) -> None:
    latest = iteration_id(server, session)
    paths = ["/", "/?page=2", "/flywheels/sections", "/flywheels/sections/datasets",
             "/flywheels/sections/try", f"/flywheels/sections/iterations/{latest}",
             "/flywheels/sections/iterations/latest", "/flywheels/descr",
             "/flywheels/descr/datasets", "/flywheels/bulk-000", "/login"]
    for path in paths:
        answer = page(server, path, session)
        assert answer.status == 200, (path, answer.text[:500])
        assert answer.headers["content-type"].startswith("text/html"), path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "'unsafe-inline'" not in csp
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert external_links(answer.text) == [], path
        assert "<script>" not in answer.text and "onerror" not in answer.text.replace(
            "onerror=alert(1)&gt;", ""), path  # no inline script of our own either
        assert re.findall(r"<script\b[^>]*>", answer.text) == [
            '<script src="/static/console.js" defer>'], path


def test_the_static_files_are_served(server: ApiServer) -> None:
    css = page(server, "/static/console.css")
    js = page(server, "/static/console.js")
    assert css.status == js.status == 200
    assert css.headers["content-type"].startswith("text/css") and len(css.text) > 100
    assert "javascript" in js.headers["content-type"] and len(js.text) > 100
    assert not re.search(r"https?://", js.text)  # the script fetches nothing elsewhere
    assert page(server, "/static/nope.js").status == 404


def test_a_first_visit_gets_a_strict_session_cookie(server: ApiServer) -> None:
    answer = page(server, "/")
    raw = [v for v in answer.headers.get_all("set-cookie") or []
           if v.startswith("flywheel_session=")]
    assert len(raw) == 1
    attributes = raw[0].lower()
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
    # a known session gets no new cookie
    assert page(server, "/", answer.cookie).cookie is None


def test_not_found(server: ApiServer, session: str) -> None:
    for path, text in (("/flywheels/nope", "no flywheel named &#39;nope&#39;"),
                       ("/flywheels/sections/iterations/nope", "has no iteration nope"),
                       ("/flywheels/nope/datasets", "no flywheel named")):
        answer = page(server, path, session)
        assert answer.status == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in answer.text and text in answer.text, path
        assert answer.headers["x-frame-options"] == "DENY"


def test_live_parts(server: ApiServer, session: str) -> None:
    answer = page(server, "/flywheels/sections/live", session)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["content-security-policy"]
    body = json.loads(answer.text)
    assert set(body) == {"state", "busy", "fragments"}
    assert body["busy"] is False
    assert set(body["fragments"]) == {"summary", "chart", "iterations", "promotions"}
    # the state a page was rendered with is the one the poll says (nothing changed)
    flywheel = page(server, "/flywheels/sections", session).text
    assert f'data-state="{body["state"]}"' in flywheel
    assert page(server, "/flywheels/nope/live", session).status == 404


# Host ---------------------------------------------------------------------------------------


def test_a_foreign_host_is_refused_without_credentials(server: ApiServer) -> None:
    port = server.port
    for host in (f"evil.example:{port}", "evil.example", f"10.0.0.1:{port}"):
        answer = call(port, "GET", "/", headers={"Host": host})
        assert answer.status == 421, host
        assert answer.cookie is None
    assert call(port, "GET", "/flywheels/sections/live",
                headers={"Host": f"evil.example:{port}"}).status == 421
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        answer = call(port, "GET", "/", headers={"Host": host})
        assert answer.status == 200, host


# escaping -----------------------------------------------------------------------------------


def assert_escaped(html: str) -> None:
    assert "<img src=x" not in html
    assert "<script>alert" not in html
    assert "onerror=alert(1)>" not in html


def test_a_dataset_description_is_escaped(server: ApiServer, session: str) -> None:
    html = page(server, "/flywheels/descr/datasets", session).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert ("&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
            or "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html)
    assert_escaped(html)


def test_a_spec_load_error_is_escaped_on_the_list(server: ApiServer, session: str) -> None:
    html = page(server, "/?q=evil", session).text
    assert "specs/evil.yaml" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_escaped(html)
    for path in ("/", "/?page=3", "/?state=stalled"):
        assert_escaped(page(server, path, session).text)


def test_query_text_is_escaped(server: ApiServer, session: str) -> None:
    html = page(server, f"/?q={quote(SCRIPT)}", session).text
    assert_escaped(html)
    assert "No flywheel matches." in html
    html = page(server, f"/login?next={quote(SCRIPT)}", session).text
    assert_escaped(html)
    html = page(server, f"/flywheels/sections?done=pinned&version={quote(IMG)}", session).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert_escaped(html)


def test_every_row_link_on_the_list_is_a_console_page(server: ApiServer, session: str) -> None:
    broken = page(server, "/?q=evil", session)
    assert row_count(broken) == 1 and not table_rows(broken)  # its path is no flywheel's page
    assert 'class="row-error"' in broken.text  # the load error is shown on the row instead
    for href in [*table_rows(page(server, "/", session)), "/no/such/page"]:
        answer = page(server, href, session)
        assert answer.headers["content-type"].startswith("text/html"), href
        assert "x-frame-options" in answer.headers, href
        assert answer.status == (404 if href == "/no/such/page" else 200), href


# the list's pages and filters ---------------------------------------------------------------


def count_text(answer: Answer) -> str:
    found = re.search(r'<span class="count"[^>]*>([^<]*)</span>', answer.text)
    assert found
    return found.group(1)


def test_the_list_is_paged_fifty_a_page(server: ApiServer, session: str) -> None:
    first = page(server, "/", session)
    assert count_text(first) == f"{TOTAL} of {TOTAL} flywheels"
    assert len(table_rows(first)) == 50
    assert "Page 1 of 3" in first.text and 'rel="next"' in first.text
    assert 'rel="prev"' not in first.text
    second = page(server, "/?page=2", session)
    third = page(server, "/?page=3", session)
    assert len(table_rows(second)) == 50
    assert row_count(third) == TOTAL - 100
    assert len(table_rows(third)) == TOTAL - 101  # specs/evil.yaml: listed, not linked
    assert "Page 3 of 3" in third.text and 'rel="next"' not in third.text
    everything = table_rows(first) + table_rows(second) + table_rows(third)
    assert len(set(everything)) == TOTAL - 1  # no row twice, none left out (but evil's)
    assert {"/flywheels/sections", "/flywheels/descr", "/flywheels/bulk-119"} <= set(everything)
    # a page past the end is the last; a bad page number is the first
    assert table_rows(page(server, "/?page=99", session)) == table_rows(third)
    for bad in ("abc", "-1", "0", "1.5", "", "%00", "%D9%A3x"):
        answer = page(server, f"/?page={bad}", session)
        assert answer.status == 200, bad
        assert len(table_rows(answer)) == 50, bad
    assert table_rows(page(server, "/?page=" + "9" * 40, session)) == table_rows(third)
    # a digit to Python but not ASCII (Arabic three, superscript two): the first page
    assert table_rows(page(server, "/?page=%D9%A3", session)) == table_rows(first)


def test_a_superscript_page_number_does_not_crash(server: ApiServer, session: str) -> None:
    assert page(server, "/?page=%C2%B2", session).status == 200


def test_the_list_filters_by_name(server: ApiServer, session: str) -> None:
    answer = page(server, "/?q=bulk-11", session)
    assert count_text(answer) == f"10 of {TOTAL} flywheels"
    assert table_rows(answer) == [f"/flywheels/bulk-11{n}" for n in range(10)]
    assert "Page 1 of" not in answer.text  # one page: no pager
    upper = page(server, "/?q=BULK-11", session)
    assert table_rows(upper) == table_rows(answer)
    assert count_text(page(server, "/?q=bulk", session)) == f"{BULK} of {TOTAL} flywheels"
    # the pager keeps the filter
    paged = page(server, "/?q=bulk&page=3", session)
    assert len(table_rows(paged)) == BULK - 100
    assert 'href="/?q=bulk&amp;state=&amp;page=2"' in paged.text
    assert table_rows(page(server, "/?q=sections", session)) == ["/flywheels/sections"]
    none = page(server, "/?q=zzz-no-such", session)
    assert count_text(none) == f"0 of {TOTAL} flywheels" and "No flywheel matches." in none.text


def test_the_list_filters_by_state(server: ApiServer, session: str) -> None:
    counts = {}
    for state in ("ready", "not-ready", "stalled", "running", "failed", "out-of-sync"):
        answer = page(server, f"/?state={state}", session)
        assert answer.status == 200, state
        shown = count_text(answer)
        assert shown.endswith(f" of {TOTAL} flywheels"), shown
        counts[state] = int(shown.split()[0])
        assert f'<option value="{state}" selected>' in answer.text
    # the bulk flywheels declare no data: nothing to do, so Ready; sections (no active model,
    # manual promotion), descr (its first iteration pending) and the broken spec are not
    assert counts["ready"] == BULK and counts["not-ready"] == 3
    not_ready = page(server, "/?state=not-ready", session)
    assert set(table_rows(not_ready)) == {"/flywheels/sections", "/flywheels/descr"}
    assert row_count(not_ready) == 3 and "specs/evil.yaml" in not_ready.text
    assert counts["running"] == 0 and counts["failed"] == 0
    stalled = set(table_rows(page(server, "/?state=stalled&q=s", session)))
    assert "/flywheels/sections" in stalled  # manual promotion and no pin: stalled
    # an unknown state is no filter
    assert count_text(page(server, "/?state=bogus", session)) == f"{TOTAL} of {TOTAL} flywheels"
    both = page(server, "/?state=ready&q=bulk-00", session)
    assert count_text(both) == f"10 of {TOTAL} flywheels"
    assert count_text(page(server, "/?state=not-ready&q=bulk", session)) == \
        f"0 of {TOTAL} flywheels"


# Run flywheel -----------------------------------------------------------------------------


def test_run_flywheel_without_new_data_is_refused(server: ApiServer, session: str) -> None:
    before = commits(server.root)
    status = git(server.root, "status", "--porcelain")
    token = page(server, "/flywheels/sections", session).token
    body, headers = form({"csrf": token})
    answer = call(server.port, "POST", "/flywheels/sections/run", body=body, headers=headers,
                  cookie=session)
    assert answer.status == 409  # refused on the flywheel's own page, saying why
    assert answer.headers["content-type"].startswith("text/html")
    assert 'data-testid="problem"' in answer.text and 'data-testid="run-flywheel"' in answer.text
    assert "no new data since iteration" in answer.text
    assert commits(server.root) == before
    assert git(server.root, "status", "--porcelain") == status


# CSRF and Origin ----------------------------------------------------------------------------


def pin(server: ApiServer, session: str | None, token: str | None,
        origin: str | None = None) -> Answer:
    fields = {"version": "v1", "return_to": "/flywheels/sections"}
    if token is not None:
        fields["csrf"] = token
    body, headers = form(fields)
    if origin is not None:
        headers["Origin"] = origin
    return call(server.port, "POST", "/flywheels/sections/active-model", body=body,
                headers=headers, cookie=session)


def test_make_active_needs_the_sessions_token_and_origin(server: ApiServer,
                                                         session: str) -> None:
    before = commits(server.root)
    flywheel = page(server, "/flywheels/sections", session)
    assert 'action="/flywheels/sections/active-model"' in flywheel.text
    token = flywheel.token
    other = page(server, "/").cookie  # another browser's session and its token
    assert other is not None
    other_token = page(server, "/flywheels/sections", other).token
    assert other_token != token
    refused = [
        pin(server, session, None),                                  # no token
        pin(server, session, "0" * 40),                              # a wrong one
        pin(server, session, other_token),                           # another session's
        pin(server, None, token),                                    # no cookie
        pin(server, session, token, origin="http://evil.example"),   # another site
        pin(server, session, token, origin=f"http://evil.example:{server.port}"),
        pin(server, session, token, origin="null"),
    ]
    for answer in refused:
        assert answer.status == 403, answer.text
    assert commits(server.root) == before

    done = pin(server, session, token, origin=f"http://127.0.0.1:{server.port}")
    assert done.status == 303, done.text
    assert done.headers["location"] == "/flywheels/sections?done=pinned&version=v1"
    after = commits(server.root)
    assert len(after) == len(before) + 1
    assert "activeModel: v1" in (server.root / "specs/sections.yaml").read_text("utf-8")
    shown = page(server, done.headers["location"], session)
    assert "Version v1 is the active model now" in shown.text
    assert '<dd data-testid="active-model">v1' in shown.text


def test_a_non_ascii_token_is_refused(server: ApiServer, session: str) -> None:
    assert pin(server, session, "\u00e9" * 40).status == 403


def test_a_non_ascii_cookie_is_a_fresh_session(server: ApiServer) -> None:
    assert call(server.port, "GET", "/", cookie="abc.-.9999999999.\u00e9").status == 200


# Try it -----------------------------------------------------------------------------------


def test_try_it_classifies_and_escapes_the_text(server: ApiServer, session: str) -> None:
    before = commits(server.root)
    token = page(server, "/flywheels/sections/try", session).token
    text = f"postgresql database server {IMG} {SCRIPT}"
    body, headers = form({"csrf": token, "text": text, "version": "v1"})
    answer = call(server.port, "POST", "/flywheels/sections/try", body=body, headers=headers,
                  cookie=session)
    assert answer.status == 200, answer.text[-1500:]
    assert "<h3>v1 says</h3>" in answer.text
    scored = re.findall(r'<tr(?: class="chosen")?><th scope="row">(\w+)', answer.text)
    assert sorted(scored) == ["database", "games", "mail", "sound"]
    assert answer.text.count("predicted</span>") == 1
    assert "&lt;img src=x onerror=alert(1)&gt;" in answer.text  # the text, back in its box
    assert_escaped(answer.text)
    body, headers = form({"csrf": token, "text": "   "})
    empty = call(server.port, "POST", "/flywheels/sections/try", body=body, headers=headers,
                 cookie=session)
    assert empty.status == 400 and "Type or paste a text to classify." in empty.text
    body, headers = form({"text": "no token"})
    assert call(server.port, "POST", "/flywheels/sections/try", body=body, headers=headers,
                cookie=session).status == 403
    assert commits(server.root) == before  # classifying writes nothing


# Create dataset -----------------------------------------------------------------------------


def upload(server: ApiServer, session: str, name: str, content: bytes,
           token: str | None = None, description: str = "") -> Answer:
    token = token or page(server, "/flywheels/sections/datasets", session).token
    body, headers = multipart({"csrf": token, "dataset_name": name, "dataset_type": "TRAIN",
                               "description": description}, (f"{name}.csv", content))
    return call(server.port, "POST", "/flywheels/sections/datasets", body=body,
                headers=headers, cookie=session)


def test_create_dataset_with_a_bad_row_declares_nothing(server: ApiServer,
                                                        session: str) -> None:
    before, files = commits(server.root), data_files(server.root)
    good = train_rows(2, skip=20)
    content = csv_bytes(good[:3]) + b"just-one-column\n" + csv_bytes(good[3:])
    answer = upload(server, session, "bad-rows", content, description=IMG)
    assert answer.status == 400
    assert "Nothing was declared." in answer.text
    assert "bad-rows.csv:4: expected 2 columns (label,text), found 1" in answer.text
    assert 'value="bad-rows"' in answer.text  # the form keeps what was entered, escaped
    assert_escaped(answer.text)
    assert commits(server.root) == before
    assert data_files(server.root) == files


def test_create_dataset_without_a_file_or_token(server: ApiServer, session: str) -> None:
    before, files = commits(server.root), data_files(server.root)
    token = page(server, "/flywheels/sections/datasets", session).token
    body, headers = multipart({"csrf": token, "dataset_name": "nofile"}, None)
    answer = call(server.port, "POST", "/flywheels/sections/datasets", body=body,
                  headers=headers, cookie=session)
    assert answer.status == 400 and "Choose a CSV file to upload." in answer.text
    body, headers = multipart({"dataset_name": "notoken"}, ("x.csv", csv_bytes(train_rows(1))))
    assert call(server.port, "POST", "/flywheels/sections/datasets", body=body,
                headers=headers, cookie=session).status == 403
    assert commits(server.root) == before
    assert data_files(server.root) == files


def test_create_dataset(server: ApiServer, session: str) -> None:
    before, files = commits(server.root), data_files(server.root)
    answer = upload(server, session, "more-train", csv_bytes(train_rows(3, skip=20)),
                    description="twelve more")
    assert answer.status == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/flywheels/sections/datasets?done=dataset&dataset=more-train"
                               "&documents=12&commit=")
    assert len(commits(server.root)) == len(before) + 1
    new = data_files(server.root) - files
    assert len(new) == 1
    (path,) = new
    assert path.startswith("data/sections/") and path.endswith(".csv")
    assert git(server.root, "status", "--porcelain", "--", "specs", "data").strip() == ""
    shown = page(server, location, session)
    assert "Dataset more-train was declared (12 documents" in shown.text
    assert "twelve more" in shown.text


# the form size limit ------------------------------------------------------------------------


def test_a_form_without_a_length_is_refused(server: ApiServer, session: str) -> None:
    before = commits(server.root)
    token = page(server, "/flywheels/sections", session).token
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", "/flywheels/sections/run",
                     body=iter([f"csrf={token}".encode()]),  # chunked: no Content-Length
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Cookie": f"flywheel_session={session}"},
                     encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413
        assert response.getheader("Content-Length") is not None
        response.read()
    finally:
        conn.close()
    assert commits(server.root) == before


def test_a_form_over_the_limit_is_refused_before_it_is_read(server: ApiServer,
                                                            session: str) -> None:
    token = page(server, "/flywheels/sections", session).token
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest("POST", "/flywheels/sections/run")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Cookie", f"flywheel_session={session}")
        conn.putheader("Content-Length", str(64 * 1024 * 1024 + 1))
        conn.endheaders(f"csrf={token}&".encode())
        response = conn.getresponse()  # answered without the 64 MiB being sent
        assert response.status == 413
        assert b"at most 64 MiB" in response.read()
    finally:
        conn.close()


# sign-in ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    base = tmp_path_factory.mktemp("console-auth")
    root = base / "repo"
    run_cli(base, "init", str(root))
    (root / "specs/sections.yaml").write_text(BULK_SPEC.format(name="sections"), "utf-8")
    commit(root, "the sections flywheel")
    credentials = base / "credentials"
    credentials.write_text(CREDENTIALS, "utf-8")
    with ApiServer(root, watch=False,
                   extra=("--credentials-file", str(credentials))) as running:
        yield running


def sign_in(server: ApiServer, key: str, secret: str, next_path: str = "/") -> tuple[Answer, str]:
    first = call(server.port, "GET", f"/login?next={quote(next_path, safe='/')}")
    assert first.status == 200 and first.cookie
    body, headers = form({"csrf": first.token, "access_key_id": key,
                          "secret_access_key": secret, "next": next_path})
    return call(server.port, "POST", "/login", body=body, headers=headers,
                cookie=first.cookie), first.cookie


def test_pages_ask_to_sign_in(signed_server: ApiServer) -> None:
    answer = call(signed_server.port, "GET", "/")
    assert answer.status == 303
    assert answer.headers["location"] == "/login?next=/"
    assert answer.cookie  # the anonymous session the sign-in form's token belongs to
    deep = call(signed_server.port, "GET", "/flywheels/sections/datasets", cookie=answer.cookie)
    assert deep.status == 303
    assert deep.headers["location"] == "/login?next=/flywheels/sections/datasets"
    assert call(signed_server.port, "GET", "/flywheels/sections/live").status == 303
    # the Host check is for servers without credentials: this one asks to sign in anywhere
    foreign = call(signed_server.port, "GET", "/",
                   headers={"Host": f"evil.example:{signed_server.port}"})
    assert foreign.status == 303


def test_a_wrong_secret_signs_no_one_in(signed_server: ApiServer) -> None:
    for key, secret in (("AKIDCONSOLE", "wrong"), ("AKIDNOBODY", "s3cret"),
                        ("AKIDCONSOLE", "")):
        answer, anonymous = sign_in(signed_server, key, secret)
        assert answer.status == 401, (key, secret)
        assert answer.cookie is None
        assert "do not match" in answer.text
        assert "s3cret" not in answer.text
        assert call(signed_server.port, "GET", "/", cookie=anonymous).status == 303


def test_sign_in_without_the_forms_token_is_refused(signed_server: ApiServer) -> None:
    first = call(signed_server.port, "GET", "/login")
    body, headers = form({"access_key_id": "AKIDCONSOLE", "secret_access_key": "s3cret"})
    answer = call(signed_server.port, "POST", "/login", body=body, headers=headers,
                  cookie=first.cookie)
    assert answer.status == 403 and answer.cookie is None


def test_sign_in_and_out(signed_server: ApiServer) -> None:
    answer, anonymous = sign_in(signed_server, "AKIDCONSOLE", "s3cret",
                                "/flywheels/sections")
    assert answer.status == 303
    assert answer.headers["location"] == "/flywheels/sections"
    cookie = answer.cookie
    assert cookie and cookie != anonymous
    assert "s3cret" not in cookie
    home = call(signed_server.port, "GET", "/", cookie=cookie)
    assert home.status == 200 and "AKIDCONSOLE" in home.text
    assert call(signed_server.port, "GET", "/flywheels/sections", cookie=cookie).status == 200
    # a next that leaves the server goes home instead
    away, _ = sign_in(signed_server, "AKIDCONSOLE", "s3cret", "//evil.example/")
    assert away.status == 303 and away.headers["location"] == "/"
    for elsewhere in ("https://evil.example/", "evil.example", "/\\evil.example/"):
        away, _ = sign_in(signed_server, "AKIDCONSOLE", "s3cret", elsewhere)
        location = away.headers["location"]
        assert away.status == 303 and location.startswith("/"), elsewhere
        assert not location.startswith(("//", "/\\")), location  # no open redirect
    # signing out: a new anonymous session, which is asked to sign in again
    body, headers = form({"csrf": home.token})
    out = call(signed_server.port, "POST", "/logout", body=body, headers=headers,
               cookie=cookie)
    assert out.status == 303 and out.headers["location"] == "/login"
    assert out.cookie and out.cookie != cookie
    assert call(signed_server.port, "GET", "/", cookie=out.cookie).status == 303


def test_an_action_without_signing_in_is_refused(signed_server: ApiServer) -> None:
    before = commits(signed_server.root)
    first = call(signed_server.port, "GET", "/login")
    body, headers = form({"csrf": first.token})
    answer = call(signed_server.port, "POST", "/flywheels/sections/run", body=body,
                  headers=headers, cookie=first.cookie)
    assert answer.status == 403 and "Sign in first." in answer.text
    assert call(signed_server.port, "POST", "/flywheels/sections/run", body=body,
                headers=headers).status == 403
    assert commits(signed_server.root) == before


def test_the_json_api_still_needs_sigv4(signed_server: ApiServer) -> None:
    request = urllib.request.Request(
        signed_server.url + "/", data=b"{}", method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": "Comprehend_20171127.ListFlywheels"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code in (400, 403)
    assert b"sections" not in refused.value.read()
    # a signed-in console cookie is no API credential
    answer, _ = sign_in(signed_server, "AKIDCONSOLE", "s3cret")
    request.add_header("Cookie", f"flywheel_session={answer.cookie}")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=30)
    good = signed_server.client(access_key="AKIDCONSOLE", secret_key="s3cret")
    names = [f["FlywheelArn"].rsplit("/", 1)[1] for f in good.list_flywheels()
             ["FlywheelSummaryList"]]
    assert names == ["sections"]
    bad = signed_server.client(access_key="AKIDCONSOLE", secret_key="wrong")
    with pytest.raises(ClientError):
        bad.list_flywheels()
