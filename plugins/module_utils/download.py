# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Downloads over http, https and file:// with urllib, resuming into a .part file.

A stage3 tarball is a few hundred megabytes; a broken transfer should not
start over.  Data goes to ``<file>.part`` and, when that exists, only the
rest is asked for with an HTTP Range request.  Nothing here decides whether
the data is good: the caller verifies the .part before it gets its real name.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.parse
import urllib.request

# Ansible's open_url rather than urllib's urlopen: TLS verification, proxies
# and errors then behave as in every other Ansible module.
from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import open_url

CHUNK = 1024 * 1024


class DownloadError(Exception):
    def __init__(self, msg, url=None, status=None):
        super().__init__(msg)
        self.msg = msg
        self.url = url
        self.status = status


def join(base, *parts):
    """``base`` URL with path parts appended (no scheme-specific surprises of urljoin)."""
    url = base.rstrip("/")
    for part in parts:
        url += "/" + part.strip("/")
    return url


def _file_path(url):
    return urllib.request.url2pathname(urllib.parse.urlparse(url).path)


def _open(url, headers=None, timeout=60):
    try:
        return open_url(url, headers=headers or {}, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError("%s: HTTP %s %s" % (url, exc.code, exc.reason), url, exc.code)
    except (urllib.error.URLError, UrlConnectionError, OSError) as exc:
        raise DownloadError("%s: %s" % (url, getattr(exc, "reason", exc)), url)


def fetch_bytes(url, limit=16 * 1024 * 1024, timeout=60):
    """The whole (small) document at ``url``; refuses anything over ``limit`` bytes."""
    if url.startswith("file://"):
        try:
            with open(_file_path(url), "rb") as f:
                data = f.read(limit + 1)
        except OSError as exc:
            raise DownloadError("%s: %s" % (url, exc.strerror), url)
    else:
        with _open(url, timeout=timeout) as response:
            data = response.read(limit + 1)
    if len(data) > limit:
        raise DownloadError("%s: larger than %d bytes" % (url, limit), url)
    return data


def fetch_to_part(url, part, timeout=60):
    """Download ``url`` into ``part``, continuing an existing partial file.

    Returns ``{"resumed_from": bytes already there (0 for a fresh start),
    "received": bytes transferred now}``.
    """
    have = os.path.getsize(part) if os.path.isfile(part) else 0
    if url.startswith("file://"):
        return _copy_local(url, part, have)
    headers = {"Range": "bytes=%d-" % have} if have else {}
    try:
        response = _open(url, headers=headers, timeout=timeout)
    except DownloadError as exc:
        if exc.status == 416 and have:
            # Nothing left to send: the part is already whole (or too long,
            # which verification will catch).
            return {"resumed_from": have, "received": 0}
        raise
    with response:
        status = getattr(response, "status", 200)
        content_range = response.headers.get("Content-Range", "")
        if have and status == 206 and content_range.startswith("bytes %d-" % have):
            mode, resumed = "ab", have
        else:
            # The server ignored the Range header: start over.
            mode, resumed = "wb", 0
        received = 0
        with open(part, mode) as f:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
    return {"resumed_from": resumed, "received": received}


def _copy_local(url, part, have):
    path = _file_path(url)
    try:
        src = open(path, "rb")
    except OSError as exc:
        raise DownloadError("%s: %s" % (url, exc.strerror), url)
    with src:
        size = os.fstat(src.fileno()).st_size
        if have > size:
            have = 0
        src.seek(have)
        with open(part, "ab" if have else "wb") as f:
            shutil.copyfileobj(src, f, CHUNK)
    return {"resumed_from": have, "received": size - have}
