"""Modified UTF-7 (RFC 3501 section 5.1.3): IMAP's encoding of mailbox names."""

import base64


def encode(name):
    """UTF-8 str -> modified UTF-7 str (ASCII only)."""
    out = []
    pending = []

    def flush():
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
                       + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode(name):
    """Modified UTF-7 str (or bytes) -> UTF-8 str."""
    if isinstance(name, bytes):
        name = name.decode("ascii")
    out = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.index("-", i)
        chunk = name[i + 1:end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            out.append(base64.b64decode(b64).decode("utf-16-be"))
        i = end + 1
    return "".join(out)
