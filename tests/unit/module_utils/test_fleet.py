"""Fleet reports: the limits and the authentication of the endpoint; a refused report writes nothing."""
import datetime
import json
import os

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import fleet

TOKEN = "t" * 40
OTHER = "o" * 40
MID = "0123456789abcdef0123456789abcdef"
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)


def report(**kw):
    data = dict(reporter="controller", machine_id=MID, mac="52:54:00:12:34:56", hostname="lab-01", group="room1",
                version="20261130-1", serial="42", health="healthy",
                refusals=[dict(version="20261129-1", reason="bad signature", digest="ab" * 32,
                               time="2026-11-29T08:00:00Z")],
                log="gse: installed 20261130-1 (serial 42) on /dev/vda2\n")
    data.update(kw)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


def files(top):
    return sorted(os.path.relpath(os.path.join(d, f), top) for d, _, fs in os.walk(top) for f in fs)


@pytest.fixture
def store(tmp_path):
    return fleet.Fleet(str(tmp_path / "fleet")), tmp_path / "fleet"


def test_first_report_enrols_the_token_and_is_stored(store):
    f, top = store
    key = f.receive(report(), "Bearer " + TOKEN, remote="10.0.2.15", now=NOW)
    assert key == MID + "-525400123456"
    assert files(top) == ["hosts/%s.controller.json" % key, "tokens/" + key]
    stored = json.loads((top / "hosts" / ("%s.controller.json" % key)).read_text())
    assert stored["version"] == "20261130-1" and stored["received"] == "2026-11-30T12:00:00Z"
    assert stored["remote"] == "10.0.2.15"
    assert TOKEN not in (top / "tokens" / key).read_text()  # only its digest is kept
    assert oct(os.stat(top / "tokens" / key).st_mode & 0o777) == "0o600"


def test_a_report_with_another_token_is_refused_and_flagged(store):
    f, top = store
    f.receive(report(), "Bearer " + TOKEN, now=NOW)
    before = {p: (top / p).read_bytes() for p in files(top)}
    with pytest.raises(fleet.ReportError) as e:
        f.receive(report(version="forged"), "Bearer " + OTHER, remote="10.0.2.99", now=NOW)
    assert e.value.status == 403
    assert {p: (top / p).read_bytes() for p in before} == before  # the stored report is untouched
    hosts = f.hosts(now=NOW)
    assert hosts[0]["version"] == "20261130-1" and hosts[0]["flags"] == ["duplicate id"]


@pytest.mark.parametrize("body, auth, status, words", [
    (report(), None, 401, "Authorization: Bearer"),
    (report(), "Bearer short", 401, "Authorization: Bearer"),
    (report(), "Basic " + TOKEN, 401, "Authorization: Bearer"),
    (b"x" * (fleet.MAX_REPORT + 1), "Bearer " + TOKEN, 413, "at most 65536 bytes"),
    (b"[1, 2]", "Bearer " + TOKEN, 400, "a JSON object"),
    (b"\xff\xfe", "Bearer " + TOKEN, 400, "JSON object in UTF-8"),
    (report(command="rm -rf /"), "Bearer " + TOKEN, 400, "unknown field command"),
    (report(machine_id="../../etc/passwd"), "Bearer " + TOKEN, 400, "machine_id is malformed"),
    (report(mac=None), "Bearer " + TOKEN, 400, "lacks mac"),
    (report(hostname="a\x1b[2Jb"), "Bearer " + TOKEN, 400, "control characters"),
    (report(serial="1e9"), "Bearer " + TOKEN, 400, "decimal string"),
    (report(health="great"), "Bearer " + TOKEN, 400, "health must be one of"),
    (report(log="x" * (fleet.MAX_LOG + 1)), "Bearer " + TOKEN, 400, "log is longer"),
    (report(refusals=[{"version": "v"}] * 11), "Bearer " + TOKEN, 400, "at most 10 refusals"),
    (report(refusals=[{"run": "x"}]), "Bearer " + TOKEN, 400, "each refusal has"),
])
def test_refused_reports_write_nothing(store, body, auth, status, words):
    f, top = store
    with pytest.raises(fleet.ReportError) as e:
        f.receive(body, auth, now=NOW)
    assert e.value.status == status and words in str(e.value)
    assert not top.exists() or files(top) == []


def test_listing_merges_reporters_and_flags_stale_hosts_and_cloned_ids(store):
    f, top = store
    f.receive(report(health="unknown"), "Bearer " + TOKEN, now=NOW - datetime.timedelta(days=1))
    f.receive(report(reporter="health", health="unhealthy", refusals=[], log=None, serial=None, group=None,
                     hostname=None), "Bearer " + TOKEN,
              now=NOW - datetime.timedelta(hours=1))
    # The same machine-id behind another MAC: a disk cloned with its state area.
    f.receive(report(mac="52:54:00:00:00:02", hostname="lab-02"), "Bearer " + OTHER,
              now=NOW - datetime.timedelta(days=9))
    hosts = {h["hostname"]: h for h in f.hosts(now=NOW, stale_days=7)}
    one, two = hosts["lab-01"], hosts["lab-02"]
    assert one["health"] == "unhealthy" and one["last_seen"] == "2026-11-30T11:00:00Z"
    # The booted system's report (newer) gives no serial or group: the controller's stay.
    assert (one["serial"], one["group"], one["version"]) == ("42", "room1", "20261130-1")
    assert one["last_refusal"]["reason"] == "bad signature" and one["log"].startswith("gse: installed")
    assert one["flags"] == ["duplicate id"] and two["flags"] == ["stale", "duplicate id"]
    alone = fleet.Fleet(str(top.parent / "other"))
    alone.receive(report(), "Bearer " + TOKEN, now=NOW)
    assert alone.hosts(now=NOW)[0]["flags"] == []


def test_a_full_fleet_enrols_no_new_host_but_keeps_hearing_known_ones(tmp_path):
    # A flood of made-up ids ends at the cap; what is known goes on reporting.
    f = fleet.Fleet(str(tmp_path / "fleet"), max_hosts=2)
    f.receive(report(mac="52:54:00:00:00:01"), "Bearer " + TOKEN, now=NOW)
    f.receive(report(mac="52:54:00:00:00:02"), "Bearer " + TOKEN, now=NOW)
    before = files(tmp_path / "fleet")
    with pytest.raises(fleet.ReportError) as e:
        f.receive(report(mac="52:54:00:00:00:03"), "Bearer " + TOKEN, now=NOW)
    assert e.value.status == 429 and "no new host" in str(e.value)
    assert files(tmp_path / "fleet") == before
    f.receive(report(mac="52:54:00:00:00:01", version="v2"), "Bearer " + TOKEN, now=NOW)
    assert {h["version"] for h in f.hosts(now=NOW)} == {"v2", "20261130-1"}
