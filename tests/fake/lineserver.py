"""The plumbing the scripted fakes (imapd.py, pop3d.py) share: a listener on 127.0.0.1 with
one thread per connection, and a connection that reads and writes CRLF lines. Each fake
subclasses both and adds its protocol (the Session's run()) and its scenarios.

The server notes when each connection came (accepted), how many of the client's
connections were open at once (peak; a socket the client has closed is not counted even
if its thread has not noticed yet), and drop_all() cuts every open connection at once.

A connection ends when a hook raises Hangup, when the client hangs up or when the server
stops; anything else a session raises is a bug of the fake, kept in server.errors for the
test to report.
"""

import select
import socket
import threading
import time

CRLF = b"\r\n"


class Hangup(Exception):
    """Raised by a hook to close the connection (after whatever it sent)."""


class LineSession:
    """One connection: buffered reading of CRLF lines and literals, writing of lines."""

    def __init__(self, server, sock, index):
        self.server = server
        self.sock = sock
        self.index = index          # 0 for the first connection of the server, 1, ...
        self.rbuf = b""
        self.scenario = server.scenario

    def run(self):
        raise NotImplementedError

    # writing
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Hangup() from e

    def line(self, text):
        self.send((text.encode("utf-8") if isinstance(text, str) else text) + CRLF)

    def hangup(self):
        raise Hangup()

    # reading
    def _fill(self):
        while True:
            if self.server.stopping.is_set():
                raise Hangup()
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                raise Hangup() from e
            if not chunk:
                raise Hangup()
            self.rbuf += chunk
            return

    def readline(self):
        while CRLF not in self.rbuf:
            self._fill()
        line, self.rbuf = self.rbuf.split(CRLF, 1)
        return line

    def readexact(self, n):
        while len(self.rbuf) < n:
            self._fill()
        data, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return data

    def wait_for_close(self):
        """Says nothing and reads everything until the client hangs up (or the server stops)."""
        while True:
            self.rbuf = b""
            self._fill()


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class LineServer:
    """Serves a scenario on 127.0.0.1:port, one thread per connection. Subclasses name their
    session_class and thread_name, and may extend _finished()."""

    session_class = LineSession
    thread_name = "fake"

    def __init__(self, scenario, port=0):
        self.scenario = scenario
        self.stopping = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.accepted = []          # time.monotonic() of each connection, in order
        self.peak = 0               # the most connections of the client open at once
        self.errors = []            # exceptions of the fake itself: a test bug, not the client's
        self._open = {}             # index -> socket, until its thread closes it
        self._socks = []
        self._threads = []
        self._lock = threading.Lock()
        self._acceptor = None

    def use(self, scenario):
        """Serves later connections with another scenario (same port)."""
        self.scenario = scenario

    def start(self):
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          name=f"{self.thread_name}-accept", daemon=True)
        self._acceptor.start()
        return self

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(0.2)
            with self._lock:
                index = self.connections
                self.connections += 1
                self.accepted.append(time.monotonic())
                self._socks.append(sock)
                self._open[index] = sock
                self.peak = max(self.peak, self._count_open())
                t = threading.Thread(target=self._serve, args=(sock, index),
                                     name=f"{self.thread_name}-conn{index}", daemon=True)
                self._threads.append(t)
            t.start()

    @staticmethod
    def _peer_closed(sock):
        """The client closed its end (FIN or RST arrived): no longer its connection."""
        p = select.poll()
        p.register(sock, select.POLLRDHUP)
        return any(ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR)
                   for _, ev in p.poll(0))

    def _count_open(self):
        return sum(1 for sock in self._open.values() if not self._peer_closed(sock))

    def open_connections(self):
        """The client's connections open now."""
        with self._lock:
            return self._count_open()

    def drop_all(self):
        """Cuts every open connection at once, as a server restart or a network cut does."""
        with self._lock:
            socks = list(self._open.values())
        for sock in socks:
            _shutdown(sock)

    def _finished(self, session):
        """A connection's socket is closed (its thread is about to end)."""

    def _serve(self, sock, index):
        session = self.session_class(self, sock, index)
        try:
            session.run()
        except Hangup:
            pass
        except Exception as e:  # noqa: BLE001 - kept for the test to report
            self.errors.append(repr(e))
        finally:
            with self._lock:
                del self._open[index]
            _shutdown(sock)
            sock.close()
            self._finished(session)

    def stop(self):
        self.stopping.set()
        if self._acceptor:
            self._acceptor.join(5)
        self.listener.close()
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            _shutdown(sock)
        for t in threads:
            t.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve_by_hand(server):
    """main() of a fake run by hand: print the port, serve until interrupted."""
    server.start()
    print(server.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
