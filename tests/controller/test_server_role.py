"""The server role applied for real to this machine (playbooks/server.yml on
localhost, nginx started by the role's own service task): clients get the
publication tree as test_serving expects, and a second run changes nothing.

The host's nginx setup stays as it is: the playbook runs in a private mount
namespace where copies of /etc/nginx and /etc/rc?.d (the service task may
enable nginx there) and empty /var/log/nginx and /var/lib/nginx are
bind-mounted over the real ones, and nginx's pid file moves into that private
/var/lib/nginx.  The network is shared, so the test fetches from outside the
namespace; the teardown stops that nginx, which takes the namespace and its
mounts with it."""
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import pubtree
from client import http_get as get
import testimage
from gse.serve import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PID = "/var/lib/nginx/nginx.pid"  # inside the namespace: the private /var/lib/nginx
PRIVATE = ["/etc/nginx", "/var/log/nginx", "/var/lib/nginx"] + sorted(glob.glob("/etc/rc?.d"))

# $1: the state dir holding one replacement per PRIVATE path (same layout);
# the rest is the command.  The mounts live as long as a process (nginx) is in
# the namespace, and never show outside it (private propagation).
WRAPPER = """set -e
s=$1; shift
for d in %s; do mount --bind "$s$d" "$d"; done
exec "$@"
""" % " ".join(PRIVATE)


def host_nginx_pid():
    """The pid of the host's own nginx (pid file of /etc/nginx/nginx.conf), if it runs."""
    m = re.search(r"^\s*pid\s+([^;]+);", open("/etc/nginx/nginx.conf").read(), re.M)
    try:
        pid = int(open(m.group(1) if m else "/run/nginx.pid").read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def snapshot():
    """Everything of the host's nginx setup the role could touch."""
    seen = {"/run/nginx.pid": os.path.exists("/run/nginx.pid")}
    for top in PRIVATE:
        for d, dirs, files in os.walk(top):
            for n in dirs + files:
                p = os.path.join(d, n)
                st = os.lstat(p)
                data = os.readlink(p) if os.path.islink(p) else (
                    hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.isfile(p) else "")
                seen[p] = (st.st_mode, st.st_uid, st.st_gid, data)
    return seen


def prepare_state(state):
    """The namespace's private copies, the pid file made private.  Debian's
    default site stays: the role removes it (gse_server_disable_sites) before
    nginx starts, else it would win port 80 of the shared network."""
    for d in PRIVATE:
        if d.startswith("/etc/"):
            shutil.copytree(d, state + d, symlinks=True)
        else:
            os.makedirs(state + d, mode=0o755)
    conf = state + "/etc/nginx/nginx.conf"
    text, n = re.subn(r"^\s*pid\s+[^;]+;", f"pid {PID};", open(conf).read(), flags=re.M)
    open(conf, "w").write(text if n else f"pid {PID};\n{text}")


def skip_unless_role_can_run():
    """Skip unless an nginx role can be applied here for real, leaving the host's nginx alone."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mount namespace, nginx on the host)")
    for tool in ("unshare", "nginx"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            pytest.skip(f"missing: {tool}")
    # systemd would start nginx outside the namespace, on the host's configuration.
    if os.path.isdir("/run/systemd/system") or not os.path.exists("/etc/init.d/nginx"):
        pytest.skip("needs nginx's init script and no systemd")
    if host_nginx_pid():
        pytest.skip("the host's nginx runs: the role's service task would act on it")


def role_base(prefix):
    """(base, tree, state): a directory nginx's workers can read, with an empty publication tree
    (serial 1) and the place of the namespace's private copies."""
    # Not under pytest's 0700 tmp: nginx's workers (www-data) read the tree (and write a cache).
    base = tempfile.mkdtemp(prefix=prefix)
    os.chmod(base, 0o755)
    tree = os.path.join(base, "publish")
    os.makedirs(os.path.join(tree, ".gse"))
    open(os.path.join(tree, ".gse", "serial"), "w").write("1\n")
    return base, tree, os.path.join(base, "state")


@pytest.fixture(scope="module")
def server(signing):
    skip_unless_role_can_run()
    base, tree, state = role_base("gse-server-role-")
    home = signing[0]
    pubtree.add_image(home, tree, "v1", testimage.make_image(base, "v1", payload_bytes=1 << 20))
    pubtree.set_version(home, tree, 1, "v1")
    pubtree.add_config(home, tree, 1, {"controller.conf": "GSE_TMPFS_EXTRA=/var/tmp\n"})
    prepare_state(state)
    port = free_port()
    inventory = os.path.join(base, "hosts")
    # Root already: su is there where sudo may not be, and root needs no password
    # for it.  Modules run with ansible's own python (discovery may pick a shim).
    open(inventory, "w").write("[gse_servers]\nlocalhost ansible_connection=local ansible_become_method=su"
                               f" ansible_python_interpreter={sys.executable}\n")
    extra = {"gse_publish_dir": tree, "gse_server_listen": f"127.0.0.1:{port}",
             # nginx is installed (else skipped): the package manager's state is the
             # host's, and the task is the plain package module.
             "gse_server_install": False}

    def run():
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", WRAPPER, "sh", state,
             os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
             "-e", json.dumps(extra), os.path.join(ROOT, "playbooks", "server.yml")],
            capture_output=True, text=True, cwd=ROOT, timeout=600)

    before = snapshot()
    try:
        yield {"url": f"http://127.0.0.1:{port}", "tree": tree, "run": run, "first": run(),
               "before": before}
    finally:
        stop(base, state + PID)
        shutil.rmtree(base)


def in_namespace(base):
    """The processes whose mounts show base: the ones keeping the namespace
    (and its mounts) alive.  A zombie has left its namespace already."""
    pids = []
    for info in glob.glob("/proc/[0-9]*/mountinfo"):
        try:
            if base in open(info).read():
                pids.append(int(info.split("/")[2]))
        except OSError:
            pass  # gone meanwhile
    return pids


def stop(base, pidfile):
    """nginx's graceful stop (SIGQUIT to the master), SIGKILL for what stays."""
    assert base not in open("/proc/self/mountinfo").read(), "the mounts leaked out of the namespace"
    try:
        os.kill(int(open(pidfile).read()), signal.SIGQUIT)
    except (OSError, ValueError):
        pass  # not started
    for last in (False, True):
        deadline = time.monotonic() + 15
        while in_namespace(base) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in [] if last else in_namespace(base):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not in_namespace(base)


def recap(res):
    m = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0 ", res.stdout)
    assert res.returncode == 0 and m, res.stdout[-3000:] + res.stderr[-2000:]
    return int(m.group(2))


def test_role_starts_nginx_serving_the_tree(server):
    assert recap(server["first"]) > 0
    if os.path.lexists("/etc/nginx/sites-enabled/default"):
        assert "changed: [localhost] => (item=/etc/nginx/sites-enabled/default)" in server["first"].stdout
    url, tree = server["url"], server["tree"]
    status, headers, body = get(f"{url}/version.txt")
    assert status == 200 and body.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
    assert headers["Cache-Control"] == "no-cache"
    img = "/images/v1/image.tar.zst"
    status, headers, body = get(url + img, {"Range": "bytes=10-19"})
    assert status == 206 and body == open(tree + img, "rb").read()[10:20]
    assert "immutable" in headers["Cache-Control"]
    assert get(f"{url}/config/1/config.d.tar.gz")[0] == 200
    assert get(f"{url}/.gse/serial")[0] == 404


def test_second_run_changes_nothing(server):
    assert recap(server["run"]()) == 0


def test_host_nginx_setup_untouched(server):
    assert snapshot() == server["before"]
