"""A local web server for ingest tests and the ingest benchmark: feeds and article pages shaped
like real Arabic news sites, built from the shared Jawhara FM corpus, plus misbehaving endpoints
(hangs, floods, gzip bombs, 429s, redirects)."""

from __future__ import annotations

import gzip
import html
import json
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

Handler = Callable[[BaseHTTPRequestHandler], None]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "jawharafm-ant-v1.1.jsonl.gz"
_EPOCH = datetime(2017, 11, 1, 8, 0, tzinfo=timezone.utc)


def corpus_articles(count: int, skip: int = 0) -> list[dict]:
    """Articles with a title and a body of 300-3000 characters that windows-1256 and
    ISO-8859-6 can both encode, so one article fits every feed encoding under test."""
    found: list[dict] = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            text, title = row.get("text") or "", row.get("title") or ""
            if not title.strip() or not 300 <= len(text) <= 3000:
                continue
            try:
                (title + text).encode("cp1256")
                (title + text).encode("iso-8859-6")
            except UnicodeEncodeError:
                continue
            if skip:
                skip -= 1
                continue
            found.append(row)
            if len(found) == count:
                break
    return found


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.splitlines() if p.strip()]


def first_sentence(text: str) -> str:
    first = paragraphs(text)[0]
    return first.split(".")[0] + "." if "." in first else first


def article_html(article: dict, charset: str = "utf-8") -> bytes:
    """A news page: navigation, the article, a sidebar and a footer, like the real site."""
    title = html.escape(article["title"])
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs(article["text"]))
    page = f"""<!DOCTYPE html>
<html lang="ar" dir="rtl"><head><meta charset="{charset}">
<title>{title} | جوهرة أف أم</title>
<meta name="author" content="قسم الأخبار">
<meta property="article:published_time" content="2017-11-19T10:20:00+01:00">
</head><body>
<header><nav><a href="/">الرئيسية</a> <a href="/news">أخبار وطنية</a> <a href="/world">عالمية</a>
<a href="/sport">رياضة</a></nav></header>
<main><article><h1>{title}</h1><div class="article-body">{body}</div></article>
<aside><h3>الأكثر قراءة</h3><ul><li><a href="/x1">خبر آخر من الجهات</a></li>
<li><a href="/x2">أخبار الطقس ليوم غد</a></li></ul></aside></main>
<footer>جميع الحقوق محفوظة © جوهرة أف أم 2017</footer></body></html>"""
    return page.encode(charset, "xmlcharrefreplace")


def _date(i: int) -> datetime:
    return _EPOCH + timedelta(hours=i)


def rss2(items: list[dict], encoding: str, title: str = "جوهرة أف أم - أخبار",
         declare: bool = True, bom: bool = False) -> bytes:
    """RSS 2.0. Item keys: title, link, description, guid (optional), i (for the date)."""
    entries = []
    for item in items:
        guid = f"<guid isPermaLink=\"false\">{escape(item['guid'])}</guid>" if item.get("guid") else ""
        link = f"<link>{escape(item['link'])}</link>" if item.get("link") else ""
        entries.append(f"""<item><title>{escape(item['title'])}</title>{link}{guid}
<description>{escape(item['description'])}</description>
<pubDate>{format_datetime(_date(item['i']))}</pubDate></item>""")
    prolog = f'<?xml version="1.0" encoding="{encoding}"?>' if declare else '<?xml version="1.0"?>'
    xml = f"""{prolog}
<rss version="2.0"><channel><title>{escape(title)}</title><link>http://www.jawharafm.net/ar</link>
<description>آخر الأخبار</description><language>ar</language>
{''.join(entries)}</channel></rss>"""
    data = xml.encode(encoding, "xmlcharrefreplace")
    return (b"\xef\xbb\xbf" + data) if bom else data


def atom(items: list[dict]) -> bytes:
    entries = "".join(f"""<entry><title>{escape(item['title'])}</title>
<link rel="alternate" href="{escape(item['link'])}"/><id>{escape(item['guid'])}</id>
<updated>{_date(item['i']).isoformat()}</updated><author><name>قسم الأخبار</name></author>
<summary type="html">{escape('<p>' + html.escape(item['description']) + '</p>')}</summary></entry>"""
                      for item in items)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ar"><title>جوهرة أف أم</title>
<id>urn:jawhara:atom</id><updated>{_date(0).isoformat()}</updated>
{entries}</feed>""".encode()


def rdf(items: list[dict], encoding: str) -> bytes:
    """RSS 1.0 (RDF): no guid; an item's identity is its rdf:about / link."""
    seq = "".join(f'<rdf:li rdf:resource="{escape(item["link"])}"/>' for item in items)
    entries = "".join(f"""<item rdf:about="{escape(item['link'])}"><title>{escape(item['title'])}</title>
<link>{escape(item['link'])}</link><description>{escape(item['description'])}</description>
<dc:date>{_date(item['i']).isoformat()}</dc:date></item>""" for item in items)
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://www.jawharafm.net/rdf"><title>جوهرة</title><link>http://www.jawharafm.net/</link>
<description>أخبار</description><items><rdf:Seq>{seq}</rdf:Seq></items></channel>
{entries}</rdf:RDF>""".encode(encoding, "xmlcharrefreplace")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real news sites answer
    # Headers and body go out in separate writes; with Nagle on, each keep-alive response
    # waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?")[0]
        owner = self.server.owner
        with owner.lock:
            owner.hits[path] += 1
            owner.active += 1
            owner.peak = max(owner.peak, owner.active)
            owner.requests.append((path, dict(self.headers)))
        try:
            handler = owner.routes.get(path)
            if handler is None:
                self.send_error(404)
            else:
                handler(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up, which is what a capped or timed-out fetch does
        finally:
            with owner.lock:
                owner.active -= 1

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs of parallel clients: 1 s retransmits
    owner: FeedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up between requests of a keep-alive connection is what capped and
        # timed-out fetches do; only other failures deserve socketserver's traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FeedServer:
    """Routes are functions of the request handler; ``hits`` counts requests per path."""

    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Handler] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.active = self.peak = 0
        self.stopping = threading.Event()
        self._server = _Server((host, 0), _RequestHandler)
        self._server.owner = self
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    # Route builders

    def static(self, path: str, body: bytes, content_type: str, etag: str | None = None,
               status: int = 200, headers: dict[str, str] | None = None) -> None:
        def handle(req: BaseHTTPRequestHandler) -> None:
            if etag and req.headers.get("If-None-Match") == etag:
                req.send_response(304)
                req.send_header("ETag", etag)
                req.end_headers()
                return
            req.send_response(status)
            req.send_header("Content-Type", content_type)
            req.send_header("Content-Length", str(len(body)))
            if etag:
                req.send_header("ETag", etag)
            for name, value in (headers or {}).items():
                req.send_header(name, value)
            req.end_headers()
            req.wfile.write(body)
        self.routes[path] = handle

    def status(self, path: str, code: int, headers: dict[str, str] | None = None) -> None:
        def handle(req: BaseHTTPRequestHandler) -> None:
            req.send_response(code)
            for name, value in (headers or {}).items():
                req.send_header(name, value)
            req.send_header("Content-Length", "0")
            req.end_headers()
        self.routes[path] = handle

    def redirect(self, path: str, location: str, code: int = 302) -> None:
        self.status(path, code, {"Location": location})

    def hang(self, path: str, seconds: float = 10.0) -> None:
        """Accepts the request and answers nothing until ``seconds`` pass or the server stops."""
        def handle(req: BaseHTTPRequestHandler) -> None:
            self.stopping.wait(seconds)
            req.close_connection = True
        self.routes[path] = handle

    def slow(self, path: str, seconds: float, body: bytes = b"ok") -> None:
        def handle(req: BaseHTTPRequestHandler) -> None:
            time.sleep(seconds)
            req.send_response(200)
            req.send_header("Content-Type", "text/plain")
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
        self.routes[path] = handle

    def flood(self, path: str, megabytes: int, declare_length: bool = False) -> None:
        """``megabytes`` MB of XML-ish filler, streamed."""
        chunk = b"<item><title>" + b"x" * 1000 + b"</title></item>\n"
        total = megabytes * 1024 * 1024

        def handle(req: BaseHTTPRequestHandler) -> None:
            req.send_response(200)
            req.send_header("Content-Type", "application/rss+xml")
            if declare_length:
                req.send_header("Content-Length", str(total))
            else:
                req.send_header("Connection", "close")  # the body ends when the socket closes
                req.close_connection = True
            req.end_headers()
            sent = 0
            while sent < total and not self.stopping.is_set():
                req.wfile.write(chunk)
                sent += len(chunk)
        self.routes[path] = handle

    def gzip_bomb(self, path: str, megabytes: int) -> int:
        """A small gzip body that inflates to ``megabytes`` MB; returns its compressed size."""
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = b"\0" * (1024 * 1024)
        body = b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()
        self.static(path, body, "application/rss+xml", headers={"Content-Encoding": "gzip"})
        return len(body)
