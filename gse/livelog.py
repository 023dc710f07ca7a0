"""Follow the live log emerge writes inside the chroot and print its new lines.

Ansible shows a task's output only when the task ends; the emerge module
appends its output to ``gse_live_log`` as it comes (a path inside the chroot,
so ``<workdir>/var/log/gse-live.log`` on this host).  A thread reads it like
``tail -F``: the file may appear only after the run started (the chroot is
extracted in part A), be truncated, or be replaced by a new one.
"""
import os
import sys
import threading

# Where the emerge module writes, as the chroot sees it.
CHROOT_PATH = "/var/log/gse-live.log"


def host_path(workdir):
    return os.path.join(workdir, CHROOT_PATH.lstrip("/"))


class LiveTail:
    """Print lines appended to ``path`` until stop(); lines present at start are old news."""

    def __init__(self, path, out=None, interval=0.2):
        self.path = path
        self.out = out or sys.stdout
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gse-live-log", daemon=True)
        self._ident = None      # (st_dev, st_ino) of the file being read
        self._offset = 0
        self._partial = b""
        try:
            st = os.stat(path)
            self._ident, self._offset = (st.st_dev, st.st_ino), st.st_size
        except OSError:
            pass

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        """Print what is left and end the thread."""
        self._stop.set()
        self._thread.join()
        self.poll()
        if self._partial:
            self._emit(self._partial + b"\n")
            self._partial = b""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _loop(self):
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self):
        """Print the complete lines added since the last call."""
        try:
            f = open(self.path, "rb")
        except OSError:
            return                      # not there (yet, or any more)
        with f:
            st = os.fstat(f.fileno())
            ident = (st.st_dev, st.st_ino)
            if ident != self._ident or st.st_size < self._offset:
                # A new file, or this one was truncated: read it from the start.
                self._ident, self._offset, self._partial = ident, 0, b""
            f.seek(self._offset)
            data = f.read()
        if not data:
            return
        self._offset += len(data)
        data = self._partial + data
        complete, _sep, self._partial = data.rpartition(b"\n")
        if _sep:
            self._emit(complete + b"\n")

    def _emit(self, data):
        self.out.write(data.decode("utf-8", errors="replace"))
        self.out.flush()
