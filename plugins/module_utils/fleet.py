# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet reports: what a client says after boot, checked, stored and listed.

A host is its machine-id (the 32 hex digits the controller keeps in the
client's state area from its first boot) and the MAC it reported from.  A
report is one JSON object of at most MAX_REPORT bytes, sent with
``Authorization: Bearer <token>``.  The token is the client's own (made at
its first boot and kept in its state area); the server keeps only its
SHA-256.  The first report of a host id enrols its token (trust on first
use); a later report for that id with another token is refused and counted
as a conflict.  The listing flags both a conflict and one machine-id seen
behind several MACs (a disk cloned with its state area) as "duplicate id".

Reports are data: parsed with ``json``, checked field by field against
FIELDS, written atomically under ``<fleet dir>/hosts/``, never executed and
never used as a path without the checks of ``host_key``.

No Ansible import: the gse command loads this file by path.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import re

from .atomic_file import write_atomic

MAX_REPORT = 64 * 1024
MAX_LOG = 16 * 1024
MAX_REFUSALS = 10
MAX_TEXT = 256
STAMP = "%Y-%m-%dT%H:%M:%SZ"
TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")
MACHINE_ID = re.compile(r"[0-9a-f]{32}")
MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
REPORTERS = ("controller", "health")
HEALTH = ("healthy", "unhealthy", "unknown")
# Conflicting reports kept per host id (the newest).
MAX_CONFLICTS = 20
# Hosts a fleet directory enrols at most: reports are bounded one by one,
# and this bounds what a flood of made-up ids can write on the server.
MAX_HOSTS = 10000


class ReportError(Exception):
    """A refused report: ``status`` is the HTTP status to answer."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _text(value, name, limit=MAX_TEXT, allow_empty=True):
    if not isinstance(value, str):
        raise ReportError(400, "%s must be a string" % name)
    if len(value) > limit:
        raise ReportError(400, "%s is longer than %d characters" % (name, limit))
    if not allow_empty and not value:
        raise ReportError(400, "%s is empty" % name)
    if any(not c.isprintable() for c in value):
        raise ReportError(400, "%s holds control characters" % name)
    return value


def _serial(value, name):
    # Serials are decimal strings of any length (the controller compares them as such).
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,40}", value):
        raise ReportError(400, "%s must be a decimal string" % name)
    return value


def _log(value, name):
    if not isinstance(value, str):
        raise ReportError(400, "%s must be a string" % name)
    if len(value.encode("utf-8", "replace")) > MAX_LOG:
        raise ReportError(400, "%s is longer than %d bytes" % (name, MAX_LOG))
    # Lines of a log: tabs and newlines stay, any other control character is refused.
    if any(not (c.isprintable() or c in "\n\t") for c in value):
        raise ReportError(400, "%s holds control characters" % name)
    return value


def _refusals(value, name):
    if not isinstance(value, list) or len(value) > MAX_REFUSALS:
        raise ReportError(400, "%s must be a list of at most %d refusals" % (name, MAX_REFUSALS))
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) - {"version", "reason", "digest", "time"}:
            raise ReportError(400, "%s: each refusal has version, reason, digest and time" % name)
        out.append({k: _text(v, "%s.%s" % (name, k)) for k, v in item.items()})
    return out


# The fields of a report: name -> (required, check).
FIELDS = {
    "reporter": (True, lambda v, n: _choice(v, n, REPORTERS)),
    "machine_id": (True, lambda v, n: _match(v, n, MACHINE_ID)),
    "mac": (True, lambda v, n: _match(v, n, MAC)),
    "hostname": (False, lambda v, n: _text(v, n, 64)),
    "group": (False, lambda v, n: _text(v, n, 64)),
    "version": (False, lambda v, n: _text(v, n, 128)),
    "serial": (False, _serial),
    "health": (False, lambda v, n: _choice(v, n, HEALTH)),
    "refusals": (False, _refusals),
    "log": (False, _log),
}


def _choice(value, name, choices):
    if value not in choices:
        raise ReportError(400, "%s must be one of %s" % (name, ", ".join(choices)))
    return value


def _match(value, name, pattern):
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ReportError(400, "%s is malformed" % name)
    return value


def parse(body):
    """The checked report of ``body`` (bytes); ReportError when it is refused."""
    if len(body) > MAX_REPORT:
        raise ReportError(413, "a report is at most %d bytes" % MAX_REPORT)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReportError(400, "a report is a JSON object in UTF-8") from None
    if not isinstance(data, dict):
        raise ReportError(400, "a report is a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ReportError(400, "unknown field %s" % _shown(unknown[0]))
    out = {}
    for name, (required, check) in FIELDS.items():
        if name not in data:
            if required:
                raise ReportError(400, "the report lacks %s" % name)
            continue
        out[name] = check(data[name], name)
    return out


def _shown(value, limit=40):
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= limit else text[:limit] + "..."


def host_key(report):
    """The file name of a host: its machine-id and MAC, both checked by ``parse``."""
    return "%s-%s" % (report["machine_id"], report["mac"].replace(":", ""))


def token_of(header):
    """The client token of an Authorization header value; ReportError (401) when absent or malformed."""
    scheme, _sep, token = (header or "").partition(" ")
    if scheme != "Bearer" or not TOKEN.fullmatch(token.strip()):
        raise ReportError(401, "a report needs Authorization: Bearer <token of 32 to 128 [A-Za-z0-9_-]>")
    return token.strip()


def now_stamp(now=None):
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime(STAMP)


class Fleet:
    """The reports of a fleet directory (``<publish dir>/.gse/fleet``: never served)."""

    def __init__(self, directory, max_hosts=MAX_HOSTS):
        self.dir = directory
        self.max_hosts = max_hosts

    def _sub(self, name):
        path = os.path.join(self.dir, name)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def receive(self, body, authorization, remote="", now=None):
        """Check, authenticate and store one report; returns its host key.  ReportError: nothing is written
        (but a conflict is counted)."""
        token = token_of(authorization)
        report = parse(body)
        key = host_key(report)
        digest = hashlib.sha256(token.encode("ascii")).hexdigest()
        tokens = self._sub("tokens")
        token_file = os.path.join(tokens, key)
        stamp = now_stamp(now)
        try:
            with open(token_file, encoding="ascii") as f:
                known = f.read().strip()
        except FileNotFoundError:
            known = None
        if known is None:
            if len(os.listdir(tokens)) >= self.max_hosts:
                raise ReportError(429, "the fleet directory holds %d hosts already: no new host is enrolled"
                                  % self.max_hosts)
            # Trust on first use: the first token that reports for this id is its token.
            try:
                fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise ReportError(409, "two reports for one new host at once; send again") from None
            with os.fdopen(fd, "w") as f:
                f.write(digest + "\n")
                f.flush()
                os.fsync(f.fileno())
        elif not hmac.compare_digest(known, digest):
            self._conflict(key, report, remote, stamp)
            raise ReportError(403, "host %s reports with another token: refused and flagged" % key)
        record = dict(report, received=stamp, remote=_shown(remote, 64))
        write_atomic(os.path.join(self._sub("hosts"), "%s.%s.json" % (key, report["reporter"])),
                     json.dumps(record, sort_keys=True), mode=0o600, unique=True)
        return key

    def _conflict(self, key, report, remote, stamp):
        path = os.path.join(self._sub("conflicts"), key)
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        entry = json.dumps(dict(received=stamp, remote=_shown(remote, 64), hostname=report.get("hostname", "")),
                           sort_keys=True)
        write_atomic(path, "\n".join((lines + [entry])[-MAX_CONFLICTS:]) + "\n", mode=0o600, unique=True)

    def hosts(self, now=None, stale_days=7):
        """One row a host, newest report of each reporter merged, with its flags."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        rows = {}
        hosts = os.path.join(self.dir, "hosts")
        names = sorted(os.listdir(hosts)) if os.path.isdir(hosts) else []
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                with open(os.path.join(hosts, name), encoding="utf-8") as f:
                    record = json.load(f)
            except (OSError, ValueError):
                continue
            key = name[:-len(".json")].rsplit(".", 1)[0]
            row = rows.setdefault(key, dict(host=key, reports={}))
            row["reports"][record.get("reporter", "?")] = record
        out = []
        # A disk cloned with its state area: one machine-id behind several MACs.
        ids = {}
        for key in rows:
            ids.setdefault(key.split("-", 1)[0], []).append(key)
        for key, row in sorted(rows.items()):
            reports = sorted(row["reports"].values(), key=lambda r: r.get("received", ""))
            # Each field from the newest report that gives it: the booted
            # system's report has no serial, group or log, the controller's has.
            newest = {}
            for rep in reports:
                newest.update({k: v for k, v in rep.items() if v not in ("", None, [])})
            health = newest.get("health") or "unknown"
            refusals = [r for rep in reports for r in rep.get("refusals", [])]
            last_seen = newest.get("received", "")
            try:
                age = now - datetime.datetime.strptime(last_seen, STAMP).replace(tzinfo=datetime.timezone.utc)
                stale = age.days >= stale_days
            except ValueError:
                stale = True
            conflicts = os.path.join(self.dir, "conflicts", key)
            duplicate = os.path.exists(conflicts) or len(ids[key.split("-", 1)[0]]) > 1
            flags = (["stale"] if stale else []) + (["duplicate id"] if duplicate else [])
            out.append(dict(host=key, machine_id=newest.get("machine_id"), mac=newest.get("mac"),
                            hostname=newest.get("hostname", ""), group=newest.get("group", ""),
                            version=newest.get("version", ""), serial=newest.get("serial", ""),
                            health=health, last_seen=last_seen,
                            last_refusal=refusals[-1] if refusals else None, flags=flags,
                            log=row["reports"].get("controller", {}).get("log", "")))
        return out
