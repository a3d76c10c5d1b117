"""The benchmark corpus: generated once (tests/harness/corpus.py) into files on disk, then
seeded from there into each tool's server account, so every tool starts from the same
bytes, flags and dates, and 100,000 messages never sit in memory at once."""

import base64
import datetime
import json
import os
import random
import statistics
import time

from harness import corpus

CORPUS_SEED = 1


class DiskCorpus:
    """The corpus as files: DIR/msgs/N.eml plus DIR/index.json ({folder: [[file, flags,
    internaldate], ...]}) and summary figures for the report."""

    def __init__(self, directory, count, folders, largest_mb=0):
        self.dir = directory
        self.count = count
        self.largest_mb = largest_mb
        self.folders = corpus.folder_names(folders)
        self.index = {}
        self.summary = {}

    def build(self, log):
        os.makedirs(os.path.join(self.dir, "msgs"), exist_ok=True)
        t0 = time.monotonic()
        sizes, crlf, multipart, utf8_subjects = [], 0, 0, 0
        largest_added = 0
        for m in corpus.iter_messages(self.count, self.folders, seed=CORPUS_SEED, big=True):
            name = f"{m.index}.eml"
            with open(os.path.join(self.dir, "msgs", name), "wb") as f:
                f.write(m.raw)
            self.index.setdefault(m.folder, []).append(
                [name, list(m.flags), m.internaldate.isoformat()])
            sizes.append(m.size)
            crlf += m.crlf
            multipart += b"Content-Type: multipart/mixed" in m.raw[:4096]
            utf8_subjects += not m.subject.isascii()
            if (m.index + 1) % 20000 == 0:
                log(f"corpus: {m.index + 1} of {self.count} messages generated")
        if self.largest_mb:
            raw = largest_message(int(self.largest_mb * 1e6))
            with open(os.path.join(self.dir, "msgs", "largest.eml"), "wb") as f:
                f.write(raw)
            self.index.setdefault("INBOX", []).append(
                ["largest.eml", ["\\Seen"], corpus.EPOCH.isoformat()])
            sizes.append(len(raw))
            largest_added = len(raw)
        with open(os.path.join(self.dir, "index.json"), "w") as f:
            json.dump(self.index, f)
        self.summary = _summary(sizes, crlf, multipart, utf8_subjects, self.index,
                                self.folders)
        self.summary["largest_added"] = largest_added
        log(f"corpus: {self.count} messages, {self.summary['total_mb']:.1f} MB in "
            f"{time.monotonic() - t0:.1f} s")

    def items(self, folder):
        """(raw, flags, internaldate) of the folder's messages, read lazily."""
        for name, flags, date in self.index.get(folder, []):
            with open(os.path.join(self.dir, "msgs", name), "rb") as f:
                raw = f.read()
            yield raw, tuple(flags), datetime.datetime.fromisoformat(date)

    def seed(self, srv, user):
        """Every folder of the corpus into `user`'s mailbox on the server. Folders of the
        default list that got no message are still created (tools create empty ones)."""
        for folder in self.folders:
            if folder in self.index:
                srv.seed(user, folder, self.items(folder))
            else:
                srv.folder_path(user, folder)


def largest_message(size):
    """One message of about `size` bytes (a base64 attachment), for checking that peak
    memory does not grow with the largest message."""
    payload = base64.encodebytes(random.Random("bench-largest").randbytes(size * 3 // 4))
    head = (b"From: Big Sender <big@example.test>\nTo: alice@example.test\n"
            b"Subject: the largest message\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n"
            b"Message-ID: <largest@bench.example.test>\nMIME-Version: 1.0\n"
            b"Content-Type: application/octet-stream; name=big.bin\n"
            b"Content-Transfer-Encoding: base64\n\n")
    return head + payload


def _percentile(sorted_values, share):
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def _summary(sizes, crlf, multipart, utf8_subjects, index, folders):
    s = sorted(sizes)
    return {
        "count": len(s),
        "folders": len(folders),
        "per_folder": {f: len(index.get(f, [])) for f in folders},
        "total_mb": sum(s) / 1e6,
        "min": s[0], "median": int(statistics.median(s)), "p90": _percentile(s, 0.9),
        "p99": _percentile(s, 0.99), "max": s[-1],
        "over_1mb": sum(1 for v in s if v >= 1_000_000),
        "crlf_share": crlf / len(s), "multipart_share": multipart / len(s),
        "utf8_subject_share": utf8_subjects / len(s),
    }


def new_messages(count, folders, run):
    """The messages that 'arrive' on the server before the resync of run `run`: the same
    for every tool, and never equal to a corpus message (another generator seed)."""
    return corpus.generate(count, folders, seed=1000 + run, big=True)
