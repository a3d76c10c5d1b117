"""A deterministic generator of realistic mail for tests and benchmarks.

    msgs = generate(count=10_000, folders=20, seed=1)
    for m in msgs: m.folder, m.raw, m.flags, m.internaldate, m.message_id, m.subject

The same (count, folders, seed, big) always gives the same bytes, on any machine.
- Every message has a unique Message-ID, From, To, Date, Subject, MIME-Version; about a
  quarter of the display names and subjects are UTF-8 in RFC 2047 encoded words.
- Bodies are UTF-8 text (8bit or quoted-printable); about a quarter are multipart/mixed
  with base64 attachments.
- Sizes: median about 5 KB, log-normal, and with `big` a rare attachment of 1-4 MB.
- Line endings: about 30% of the messages use CRLF, the rest LF only. Both are kept as
  generated: a Maildir file holds whatever it was given, while IMAP always transmits CRLF
  (Dovecot converts LF files when serving them, imaplib converts on APPEND). Compare with
  `crlf(raw)` when one side went through IMAP.
"""

import base64
import bisect
import dataclasses
import datetime
import email.header
import itertools
import quopri
import random

DOMAINS = ("example.test", "example.org", "lists.example.net", "corp.example.com")
FIRST_NAMES = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan",
               "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent",
               "Victor", "Walter")
UTF8_NAMES = ("Jürgen Müller", "Zoë Faßbender", "François Gérard", "Søren Kierkegård",
              "Łukasz Żółw", "山田 太郎", "Ελένη Παππά", "Олег Петров", "José Peña")
WORDS = ("the", "mail", "server", "sync", "folder", "message", "flag", "quick", "brown", "fox",
         "meeting", "report", "draft", "review", "patch", "release", "notes", "budget",
         "deadline", "please", "thanks", "attached", "update", "question", "answer", "today",
         "tomorrow", "project", "team", "schedule", "issue", "fixed", "build", "test", "daemon",
         "queue", "offline", "retry", "backup", "archive", "lunch", "weekend", "travel")
UTF8_WORDS = ("Grüße", "Straße", "über", "Übersicht", "café", "naïve", "déjà", "señor",
              "smørrebrød", "こんにちは", "ありがとう", "会議", "報告", "Привет", "спасибо",
              "Καλημέρα", "😀", "🚀", "✓", "€", "½")
SUBJECT_TAGS = ("", "", "", "Re: ", "Fwd: ", "[dev] ", "[announce] ", "Re: Re: ")
ATTACHMENTS = (("report.pdf", "application/pdf"), ("photo.jpg", "image/jpeg"),
               ("data.csv", "text/csv"), ("archive.zip", "application/zip"),
               ("Übersicht.xlsx", "application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet"),
               ("notes.txt", "text/plain"))

DEFAULT_FOLDERS = ("INBOX", "Sent", "Drafts", "Archive", "Trash", "Junk", "Lists/rust",
                   "Lists/linux-kernel", "Lists/dev.announce", "Work", "Work/Projects",
                   "Work/Reports 2024", "Family", "Friends & Family", "Reisen/Übersicht",
                   "Café", "日本語", "Receipts", "Newsletters", "Old Stuff")

EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
SPAN_SECONDS = 2 * 365 * 86400
MEDIAN_SIZE = 5000


@dataclasses.dataclass
class CorpusMessage:
    index: int
    folder: str
    raw: bytes
    flags: tuple
    internaldate: datetime.datetime
    message_id: str
    subject: str      # decoded
    crlf: bool        # line endings of raw

    @property
    def size(self):
        return len(self.raw)


def crlf(raw):
    """raw with every line ending made CRLF (what IMAP transmits)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def folder_names(count=20):
    """`count` folder names: the defaults first (INBOX, the special-use ones, nested ones,
    non-ASCII ones), then "Folder 21"... when more are asked for."""
    names = list(DEFAULT_FOLDERS[:count])
    names += [f"Folder {i + 1}" for i in range(len(names), count)]
    return names


def generate(count=100, folders=20, seed=0, big=True):
    """`count` messages spread over `folders` (a number, or a list of names); INBOX gets
    the largest share. Returns a list of CorpusMessage in a stable order."""
    return list(iter_messages(count, folders, seed, big))


def iter_messages(count=100, folders=20, seed=0, big=True):
    names = folder_names(folders) if isinstance(folders, int) else list(folders)
    rng = random.Random(f"mailferry-corpus/{seed}")
    # Zipf-like shares: the first folders (INBOX, Sent) hold most of the mail.
    weights = [1.0 / (i + 1) for i in range(len(names))]
    for index in range(count):
        folder = rng.choices(names, weights)[0]
        yield _message(rng, seed, index, folder, big)


def by_folder(messages):
    out = {}
    for m in messages:
        out.setdefault(m.folder, []).append(m)
    return out


def _encoded(text):
    """A header value: plain when ASCII, else RFC 2047 encoded words (B or Q)."""
    if text.isascii():
        return text
    return email.header.Header(text, "utf-8", maxlinelen=76).encode()


def _person(rng):
    if rng.random() < 0.25:
        name = rng.choice(UTF8_NAMES)
        local = "user%d" % rng.randrange(1000)
    else:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(FIRST_NAMES)}son"
        local = name.split()[0].lower()
    return name, f"{local}@{rng.choice(DOMAINS)}"


def _address(name, addr):
    if name.isascii():
        return f'"{name}" <{addr}>'
    return f"{_encoded(name)} <{addr}>"


def _words(rng, n, utf8_share):
    return [rng.choice(UTF8_WORDS) if rng.random() < utf8_share else rng.choice(WORDS)
            for _ in range(n)]


def _subject(rng):
    words = _words(rng, rng.randint(2, 8), 0.3 if rng.random() < 0.25 else 0.0)
    text = " ".join(words)
    return rng.choice(SUBJECT_TAGS) + text[0].upper() + text[1:]


_POOLS = {}
POOL_BYTES = 1 << 20


def _pool(utf8_share):
    """About 1 MB of wrapped lines with the given share of non-ASCII words, made once per
    process from a fixed seed; message texts are slices of it (fast and deterministic)."""
    if utf8_share not in _POOLS:
        rng = random.Random(f"mailferry-corpus-pool/{utf8_share}")
        vocab = WORDS + UTF8_WORDS
        weights = [(1 - utf8_share) / len(WORDS)] * len(WORDS) + \
                  [utf8_share / len(UTF8_WORDS)] * len(UTF8_WORDS)
        lines, line, width = [], [], 0
        for word in rng.choices(vocab, weights, k=POOL_BYTES // 6):
            if width + len(word) > 72:
                lines.append(" ".join(line))
                if rng.random() < 0.12:
                    lines.append("")
                line, width = [], 0
            line.append(word)
            width += len(word) + 1
        ends = list(itertools.accumulate(len(l.encode()) + 1 for l in lines))
        _POOLS[utf8_share] = (lines, ends)
    return _POOLS[utf8_share]


def _text(rng, size):
    """UTF-8 text of about `size` bytes in paragraphs of lines up to 72 characters."""
    lines, ends = _pool(0.15 if rng.random() < 0.5 else 0.02)
    out, need = [], size
    start = rng.randrange(len(lines))
    while need > 0:
        base = ends[start - 1] if start else 0
        stop = bisect.bisect_left(ends, base + need, lo=start) + 1
        out += lines[start:stop]
        need -= (ends[min(stop, len(ends)) - 1] - base)
        start = 0
    return "\n".join(out).strip("\n") + "\n"


def _size(rng, big):
    if big and rng.random() < 0.002:
        return rng.randint(1_000_000, 4_000_000)
    size = int(rng.lognormvariate(0, 1.0) * MEDIAN_SIZE)
    return max(300, min(size, 900_000))


def _text_part(rng, size):
    text = _text(rng, size)
    if rng.random() < 0.3:
        body = quopri.encodestring(text.encode()).decode("ascii")
        cte = "quoted-printable"
    else:
        body, cte = text, "8bit"
    head = f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {cte}\n"
    return head, body


def _attachment(rng, size):
    name, ctype = rng.choice(ATTACHMENTS)
    data = rng.randbytes(size)
    b64 = base64.encodebytes(data).decode("ascii")
    disposition = (f'attachment; filename="{name}"' if name.isascii()
                   else f"attachment; filename*=utf-8''{_percent(name)}")
    return (f'Content-Type: {ctype}; name="{_encoded(name)}"\n'
            f"Content-Transfer-Encoding: base64\nContent-Disposition: {disposition}\n\n{b64}")


def _percent(text):
    return "".join(c if c.isascii() and c.isalnum() or c in ".-_" else
                   "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def _body(rng, size, index):
    """(MIME headers, body) for a message of about `size` bytes."""
    if rng.random() < 0.25:
        text_size = min(size, rng.randint(200, 3000))
        boundary = f"=_mf_{index:06d}_{rng.getrandbits(32):08x}"
        parts = []
        head, body = _text_part(rng, text_size)
        parts.append(head + "\n" + body)
        remaining = max(size - text_size, 100)
        for _ in range(1 if remaining < 50_000 or rng.random() < 0.6 else 2):
            parts.append(_attachment(rng, max(remaining * 3 // 4, 60)))
        body = "This is a multi-part message in MIME format.\n\n"
        body += "".join(f"--{boundary}\n{p}\n" for p in parts) + f"--{boundary}--\n"
        return f'Content-Type: multipart/mixed; boundary="{boundary}"\n', body
    head, body = _text_part(rng, size)
    return head, body


def _flags(rng, folder):
    flags = []
    if folder == "Drafts":
        return ("\\Draft",) if rng.random() < 0.9 else ()
    if folder == "Sent" or rng.random() < 0.7:
        flags.append("\\Seen")
    if rng.random() < 0.08:
        flags.append("\\Answered")
    if rng.random() < 0.05:
        flags.append("\\Flagged")
    if rng.random() < 0.02:
        flags.append("$Forwarded")
    return tuple(flags)


def _message(rng, seed, index, folder, big):
    date = EPOCH + datetime.timedelta(seconds=rng.randrange(SPAN_SECONDS))
    internaldate = date + datetime.timedelta(seconds=rng.randint(1, 120))
    sender, rcpt = _person(rng), _person(rng)
    subject = _subject(rng)
    message_id = f"<{seed}.{index}.{rng.getrandbits(48):012x}@corpus.example.test>"
    mime_head, body = _body(rng, _size(rng, big), index)
    headers = (
        f"Return-Path: <{sender[1]}>\n"
        f"From: {_address(*sender)}\n"
        f"To: {_address(*rcpt)}\n"
        f"Subject: {_encoded(subject)}\n"
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}\n"
        f"Message-ID: {message_id}\n"
        f"MIME-Version: 1.0\n"
        f"{mime_head}"
    )
    if rng.random() < 0.2:
        headers = f"X-Mailer: corpus/1.0\nIn-Reply-To: <{seed}.{max(index - 1, 0)}.parent@" \
                  f"corpus.example.test>\n" + headers
    raw = (headers + "\n" + body).encode("utf-8")
    use_crlf = rng.random() < 0.3
    if use_crlf:
        raw = raw.replace(b"\n", b"\r\n")
    return CorpusMessage(index=index, folder=folder, raw=raw, flags=_flags(rng, folder),
                         internaldate=internaldate, message_id=message_id, subject=subject,
                         crlf=use_crlf)
