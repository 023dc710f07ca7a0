#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack the build root into the image tarball and write SHA512SUMS (part K, garchive)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pack
short_description: Pack a root directory into a compressed tarball with SHA512SUMS
version_added: 0.1.0
description:
  - Runs C(tar --numeric-owner --xattrs --xattrs-include=* --acls --one-file-system --sort=name --format=posix
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime) on the root (with O(source_date_epoch)
    also C(--mtime=@N --clamp-mtime)), piped into C(zstd -T0) or C(xz -T0), which writes a temporary file renamed
    over O(dest) only on success. The module reads that file back while it grows (from the page cache) and hashes
    it (SHA512), so the digest is of exactly the bytes in the file and the tarball is not read a second time.
  - Writes C(SHA512SUMS) (sha512sum format, basenames) next to O(dest), covering the tarball, O(checksum_files)
    and the files it already listed that still exist next to O(dest) (their digests are refreshed).
  - Reproducible. The same root and options give a byte-identical tarball, with entries sorted by name, numeric
    owners, pax headers without access/change times or tar's process id, modification times later than
    O(source_date_epoch) clamped to it, and ACL entries with numeric ids (tar runs, as root, in its own mount
    namespace where the build host's C(/etc/passwd) and C(/etc/group) are empty, so it finds no names to write
    for them). C(zstd -T0) and C(xz -T0) (xz 5.4 or later) write the same stream whatever the number of cores.
  - Refuses when anything is mounted at or under the root, and when O(dest) lies inside the root.
  - With O(signing_key), the tarball is signed in the same pass, from one digest. The SHA-512 state that hashed the
    compressed stream for SHA512SUMS, finished with the OpenPGP signature header and trailer, is signed by the
    gpg-agent of O(gnupghome) (C(SIGKEY), C(SETHASH), C(PKSIGN) on its socket), with the key gpg would choose for
    C(--local-user) (the newest usable signing subkey, else the primary key). This is done for RSA and EdDSA keys;
    for other algorithms C(gpg --batch --yes --pinentry-mode loopback --homedir H --local-user KEY --status-fd 1
    --armor --detach-sign --output TMP) reads a copy of what is hashed on stdin, and its C(SIG_CREATED)
    status line must name the signing key. Either way the tarball is not read a second time. C(O(dest).asc) is
    written, by rename, only when tar, the compressor and the signer all succeeded. A key with a passphrase is
    refused before packing. Part L verifies every signature with gpgv before anything is published, and
    M(gse.stateless.sign) verifies with gpgv any signature it finds.
  - With O(signing_key), C(SHA512SUMS) is signed too whenever this run writes it (C(gpg ... --status-fd 1 --armor
    --detach-sign --output .SHA512SUMS.asc.partial SHA512SUMS), renamed on the same proof), so that the
    sign step has nothing left to do for the files packed here.
  - An interrupt (SIGINT, SIGTERM, SIGHUP) at any point before the tarball and its signature are renamed into
    place, including while gpg makes the signature, kills tar, the compressor and gpg and removes their partial
    files, so no signature is finished after an interrupt. tar, the compressor and gpg are started so that the
    kernel kills them when the module's process dies (C(PR_SET_PDEATHSIG)), so not even a SIGKILL of the module
    lets gpg sign a truncated stream.
  - When the tarball or C(SHA512SUMS) is written again, its previous signature (C(.asc)) is removed before the
    new file takes its place, so no signature ever stands next to a file it does not cover.
  - Idempotent. The inputs that shape the tarball (root, excludes, compression, level, tar options) and the state
    of the root (a digest of its entry list taken before packing, see below) are recorded in
    C(.<dest name>.pack.json) next to O(dest); when O(dest) exists, that record matches and O(force) is false,
    the tarball is not packed again (SHA512SUMS is still brought up to date).
  - A rebuild with nothing changed is not packed again either. The last pack of a root is recorded beside it
    (C(<root>.packed.json), with the inputs, the root digest, where the tarball went and its signer). When a new O(dest) is
    asked for with the same inputs, the same root digest and, with O(signing_key), the same signing key, and the
    recorded tarball and signature are still the very files made then (inode, size, modification and change
    time), they are hard-linked (copied across filesystems) to O(dest) and C(O(dest).asc), as the tarball is
    reproducible and packing would make the same bytes. RV(packed) is then false and RV(reused) names the source.
  - The root digest covers every entry's path, type, inode, link count, mode, owner, size, modification and
    change time and symlink target (C(find -xdev -printf)), for directories the mode, owner, modification time
    as clamped to O(source_date_epoch), xattrs and ACLs instead of inode times, so temporary files that the build
    made and removed again leave it unchanged. Any write, chmod, chown or xattr change sets an inode's change
    time, which user space cannot set back, so an unchanged digest means an unchanged tar stream, and a file the
    build merely rewrote with the same content costs one pack, never a stale image.
  - When packing is certain (O(force), or no record of the same inputs exists), the root digest is taken while tar
    reads the root instead of before, and costs no time of its own. Its listing is then compared with the time
    read just before tar started (the next tick of the clock the kernel stamps change times with, so an entry
    changed later has a change time at or after it). When any listed entry (a directory with an entry added or
    removed included) changed at or after that time, tar may have read another state than the one listed, so no
    digest is recorded, and the next pack packs again.
options:
  root:
    description: The root directory to pack.
    type: path
    required: true
  dest:
    description: The tarball to write; its name must end in C(.tar.zst) for zstd or C(.tar.xz) for xz.
    type: path
    required: true
  compression:
    description: The compressor.
    type: str
    choices: [zstd, xz]
    default: zstd
  level:
    description: Compression level (zstd 1..19, default 3; xz 0..9, default 6).
    type: int
  excludes:
    description:
      - Entries left out, relative to the root (the C(--build-minimal) list and the cleanup entries).
        Shell wildcards; C(*) may cross C(/). A directory pattern leaves out the directory and its content.
    type: list
    elements: str
    default: []
  source_date_epoch:
    description:
      - Seconds since the epoch (SOURCE_DATE_EPOCH); every modification time later than it is stored as it.
        Part K passes the stage3's date (see C(gse_source_date_epoch)). Without it the times are stored as they are.
    type: int
  sums:
    description:
      - Write (and with O(signing_key) sign) C(SHA512SUMS). Part K packs with V(false) first, makes the chunk
        index and the report, and then calls the module again (nothing is packed, as the record matches) with
        O(checksum_files) to write C(SHA512SUMS) once over all of them.
    type: bool
    default: true
  checksum_files:
    description: Further files in the directory of O(dest) (for example C(build-report.json)) that SHA512SUMS covers.
    type: list
    elements: str
    default: []
  force:
    description: Pack again even when the recorded inputs match (C(--enforce=garchive)).
    type: bool
    default: false
  signing_key:
    description:
      - Sign the tarball while it is packed with this key (fingerprint, key id or user id; it must match
        exactly one secret key of O(gnupghome)). Only a tarball packed by this run is signed here; an
        existing one is left to M(gse.stateless.sign). Keys used this way need no passphrase (stdin carries
        the data); a key with a passphrase makes gpg fail and nothing is written.
      - The same name as in M(gse.stateless.sign) and M(gse.stateless.publish); C(sign_key) is its former
        name, kept as an alias.
    type: str
    aliases: [sign_key]
  gnupghome:
    description: The GnuPG home holding the secret key of O(signing_key).
    type: path
attributes:
  check_mode:
    support: full
    description: Says whether the tarball would be packed; writes nothing.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Pack the system
  gse.stateless.pack:
    root: "{{ gse_workdir }}"
    dest: "{{ gse_cdistdir }}/images/{{ gse_build_id }}/image.tar.zst"
    excludes: "{{ gse_minimal_entries if gse_build_minimal else [] }}"
    force: "{{ gse_enforce | gse.stateless.enforced('garchive', gse_lawful_good) }}"

- name: Pack and sign in one pass
  gse.stateless.pack:
    root: "{{ gse_workdir }}"
    dest: "{{ gse_image_dir }}/image.tar.zst"
    signing_key: "{{ gse_signing_key }}"
    gnupghome: "{{ gse_gnupghome }}"
"""

RETURN = r"""
path:
  description: The tarball.
  type: str
  returned: always
size:
  description: Bytes of the tarball.
  type: int
  returned: when the tarball exists
sha512:
  description: SHA512 of the tarball (hex).
  type: str
  returned: when the tarball exists
duration:
  description: Seconds spent packing (0 when nothing was packed).
  type: float
  returned: always
packed:
  description: Whether the tarball was (or in check mode would be) packed by this run.
  type: bool
  returned: always
sign_method:
  description:
    - How the tarball was signed, when this run packed and signed it. C(digest) (gpg-agent signed the stream's
      SHA-512) or C(stream) (gpg read the stream).
  type: str
  returned: when the tarball was packed with O(signing_key)
sums:
  description: The SHA512SUMS file.
  type: str
  returned: always
signed:
  description:
    - Files this run signed (the tarball in the same pass, C(SHA512SUMS) after writing it); in check mode the
      tarball when it would be packed and signed. Their signatures are C(<file>.asc).
  type: list
  elements: str
  returned: always
reused:
  description: The earlier tarball of the same root, taken over (hard-linked) instead of packing again.
  type: str
  returned: when the root and the inputs are unchanged since that pack
signatures_reused:
  description: Files whose signature was taken over with RV(reused) (the tarball, with O(signing_key)).
  type: list
  elements: str
  returned: when RV(reused) is returned
fingerprint:
  description: Primary key fingerprint of the signing key.
  type: str
  returned: when O(signing_key) is given (not in check mode)
"""

import hashlib
import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import openpgp_digest_sign as dsig
from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign as pgp
from ansible_collections.gse.stateless.plugins.module_utils import root_manifest, safe_paths, tar_stream
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir, read_json_dict, write_atomic
from ansible_collections.gse.stateless.plugins.module_utils.checksums import format_sums, parse_sums, sha512_file

SUMS = "SHA512SUMS"


def record_path(dest):
    return os.path.join(os.path.dirname(dest), ".%s.pack.json" % os.path.basename(dest))


def fingerprint(tar_cmd, comp_cmd):
    """Digest of everything that shapes the tarball: the exact commands (root, options, excludes, level)."""
    return hashlib.sha256(json.dumps([tar_cmd, comp_cmd]).encode()).hexdigest()


def read_record(dest):
    return read_json_dict(record_path(dest))


def up_to_date(dest, record, fp, manifest):
    """The recorded tarball is still the one at dest (same inputs, same root, same size)."""
    if not record or not manifest or record.get("fingerprint") != fp or record.get("manifest") != manifest:
        return False
    try:
        return os.stat(dest).st_size == record.get("size")
    except FileNotFoundError:
        return False


def may_be_kept(record, root_record, fp):
    """Whether the root's digest decides if anything is packed: a record of the same inputs exists.

    Without one, neither the tarball at dest nor the root's last tarball can
    stand for a new pack, whatever the root holds.
    """
    return any(r and r.get("fingerprint") == fp for r in (record, root_record))


def root_record_path(root):
    """Beside the root (like unpack's marker): what the last pack of this root made, and where."""
    return root.rstrip("/") + ".packed.json"


def file_id(path):
    """What tells that a file is still the one recorded: inode, size, modification and change time."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def reusable(root_record, fp, manifest, signer):
    """The root's last tarball when it was packed from the same root state with the same inputs.

    It must still be the very file recorded (and, when signing, its signature,
    made by the same key): anything that touched them changes their change time.
    """
    if not root_record or not manifest or root_record.get("fingerprint") != fp or root_record.get("manifest") != manifest:
        return None
    tarball = root_record.get("tarball")
    try:
        if file_id(tarball) != root_record.get("tarball_id"):
            return None
        if signer and (root_record.get("signer") != signer or file_id(tarball + ".asc") != root_record.get("asc_id")):
            return None
    except (OSError, TypeError):
        return None
    return tarball


def link_or_copy(src, dst):
    tmp = os.path.join(os.path.dirname(dst), ".%s.partial" % os.path.basename(dst))
    discard(tmp)
    try:
        os.link(src, tmp)
    except OSError:  # another filesystem
        shutil.copyfile(src, tmp)
    os.rename(tmp, dst)


def take_over(module, tarball, dest, signed):
    """Put the recorded tarball (and its signature) at dest: a hard link, no second pack and no new signature."""
    outdir = os.path.dirname(dest)
    if not os.path.isdir(outdir):
        os.makedirs(outdir, mode=0o755)
    try:
        with tar_stream.interruptible(), tar_stream.uninterrupted():
            discard(dest + ".asc")
            link_or_copy(tarball, dest)
            if signed:
                link_or_copy(tarball + ".asc", dest + ".asc")
    except OSError as e:
        module.fail_json(msg="cannot take over %s as %s: %s" % (tarball, dest, e))
    fsync_dir(outdir)


def write_root_record(root, fp, manifest, dest, record, signer):
    data = dict(fingerprint=fp, manifest=manifest, tarball=dest, tarball_id=file_id(dest), sha512=record["sha512"],
                size=record["size"], signer=signer,
                asc_id=file_id(dest + ".asc") if signer and os.path.exists(dest + ".asc") else None)
    # A temporary name of its own: the root may be shared by several packs at once (the benchmark tree).
    write_atomic(root_record_path(root), json.dumps(data, indent=1) + "\n", mode=0o644, unique=True)


def refuse(module, root, dest):
    try:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            module.fail_json(msg="root %s is not a directory" % root)
    except OSError as e:
        module.fail_json(msg="root %s: %s" % (root, e))
    if real == "/":
        module.fail_json(msg="refusing to pack /")
    mounts = safe_paths.mounts_at_or_under(real)
    if mounts:
        module.fail_json(msg="refusing to pack %s: mounted at or under it: %s" % (real, ", ".join(mounts)),
                         mounts=mounts)
    dreal = os.path.realpath(os.path.dirname(dest))
    if dreal == real or dreal.startswith(real.rstrip("/") + "/"):
        module.fail_json(msg="dest %s lies inside the root %s" % (dest, real))
    return real


def discard(path):
    """Remove a file that must not stay: a partial file of an interrupted run, or a stale signature."""
    if os.path.lexists(path):
        os.unlink(path)


def pack_and_sign(module, tar_cmd, comp_cmd, dest, sign_key, home, key, digest_signer=None, while_streaming=None,
                  before_commit=None):
    """Stream the tarball (and its signature) into temporary files, then put them in place.

    ``digest_signer`` (key, agent socket) signs the stream's own SHA-512
    state through gpg-agent after the stream; without it, gpg reads a copy of
    the stream and signs it itself.  ``while_streaming`` runs while tar and
    the compressor do (``tar_stream.stream_to_file``); ``before_commit`` may
    still fail the run before anything is put in place.
    """
    outdir = os.path.dirname(dest)
    if not os.path.isdir(outdir):
        os.makedirs(outdir, mode=0o755)
    tmp = os.path.join(outdir, ".%s.partial" % os.path.basename(dest))
    tmp_asc = os.path.join(outdir, ".%s.asc.partial" % os.path.basename(dest))
    discard(tmp)  # left by an interrupted run
    discard(tmp_asc)
    signer = fprs = primary = None
    if sign_key:
        primary, fprs = key
        if not digest_signer:
            signer = pgp.stream_sign_argv(home, sign_key, tmp_asc)
    try:
        # SIGTERM and SIGHUP end the run the way SIGINT does: through the
        # clean-up below, never past a signature.
        with tar_stream.interruptible():
            streamed = tar_stream.stream_to_file(tar_cmd, comp_cmd, tmp, signer_cmd=signer,
                                                 while_streaming=while_streaming)
            if before_commit:
                before_commit()
            if digest_signer:
                # One digest: the SHA-512 that SHA512SUMS gets, finished with the
                # signature's header, is what gpg-agent signs.
                sign_as, agent_socket = digest_signer
                try:
                    text = dsig.sign_state(agent_socket, sign_as, streamed.state)
                except dsig.AgentError as e:
                    discard(tmp)
                    module.fail_json(msg="gpg-agent made no signature by key %s: %s" % (primary, e.msg),
                                     cmd=["gpg-agent", "PKSIGN", sign_as.keygrip], rc=None, stdout=e.stdout,
                                     stderr="")
                fd = os.open(tmp_asc, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(text)
            # gpg's own proof that it signed, with the key asked for.  Not followed by
            # gpgv here: it would read the whole tarball again only to hash the bytes
            # gpg has just hashed from the same buffer (and gpg-agent has checked the
            # signature against that digest).  Found signatures are verified with gpgv
            # by the sign module, and publish verifies every signature with gpgv before
            # anything is visible.
            elif signer and not pgp.created_by(streamed.signer_status, fprs):
                discard(tmp)
                discard(tmp_asc)
                module.fail_json(msg="gpg reported no detached signature by key %s" % primary, cmd=signer,
                                 rc=0, stdout=streamed.signer_status, stderr="")
            asc = dest + ".asc"
            # All or nothing, and nothing once a stop signal has arrived.  The old
            # signature covers the old tarball: gone before the new tarball takes
            # its place; the new one follows the tarball.
            with tar_stream.uninterrupted():
                discard(asc)
                os.rename(tmp, dest)
                if sign_key:
                    os.rename(tmp_asc, asc)
    except tar_stream.PackError as e:
        discard(tmp_asc)
        module.fail_json(msg=e.msg, cmd=e.cmd, rc=e.rc, stdout="", stderr=e.stderr)
    except BaseException:
        # Interrupted (stream_to_file has killed gpg and removed its output),
        # or refused by the signal check before the commit.
        discard(tmp)
        discard(tmp_asc)
        raise
    fsync_dir(outdir)
    out = dict(changed=True, duration=round(streamed.seconds, 3), sha512=streamed.sha512, size=streamed.size,
               signed=[dest] if sign_key else [])
    return out


def signing_key(module, cmd, home, name):
    """((primary fingerprint, fingerprints of the key and its subkeys), digest signer or None).

    The digest signer (the key gpg would sign with, the agent's socket) is
    there when that key is RSA or EdDSA; otherwise gpg signs the stream itself.
    """
    argv = dsig.list_key_argv(home, name)
    rc, out, err = cmd(argv)
    try:
        if rc != 0:
            raise ValueError("not found")
        key = pgp.key_fingerprints(out)
    except ValueError as e:
        module.fail_json(msg="signing key %r: %s in the secret keyring of %s" % (name, e, home), cmd=argv, rc=rc,
                         stdout=out, stderr=err)
    sign_as = dsig.choose_key(out)
    if sign_as is None:
        return key, None
    argv = dsig.agent_socket_argv(home)
    rc, out, err = cmd(argv)
    if rc != 0 or not out.strip():
        module.fail_json(msg="no gpg-agent socket for %s" % home, cmd=argv, rc=rc, stdout=out, stderr=err)
    socket_path = out.strip()
    try:
        locked = dsig.needs_passphrase(socket_path, sign_as)
    except dsig.AgentError as e:
        module.fail_json(msg=e.msg, cmd=["gpg-agent", "KEYINFO", sign_as.keygrip], rc=None, stdout=e.stdout,
                         stderr="")
    if locked:
        # Before packing, not after: the key cannot sign unattended.
        module.fail_json(msg="signing key %s has a passphrase; keys that pack signs with need none" % name,
                         cmd=["gpg-agent", "KEYINFO", sign_as.keygrip], rc=None, stdout="", stderr="")
    return key, (sign_as, socket_path)


def run(module):
    p = module.params
    dest = os.path.abspath(p["dest"])
    suffix = tar_stream.COMPRESSORS[p["compression"]]
    if not dest.endswith(suffix):
        module.fail_json(msg="dest %s must end in %s for %s" % (dest, suffix, p["compression"]))
    root = refuse(module, p["root"], dest)
    try:
        comp_cmd = tar_stream.compressor_argv(p["compression"], p["level"])
    except ValueError as e:
        module.fail_json(msg=str(e))
    tar_cmd = tar_stream.tar_argv(root, p["excludes"], p["source_date_epoch"])
    fp = fingerprint(tar_cmd, comp_cmd)
    excludes = [a.split("=", 1)[1] for a in tar_stream.exclude_args(p["excludes"])]
    record = read_record(dest)
    root_record = read_json_dict(root_record_path(root))
    manifest = None
    if p["force"] or not may_be_kept(record, root_record, fp):
        # Packing is certain: the root's digest is only recorded, so it is taken
        # while tar reads the root (below).
        must_pack = True
    else:
        try:
            # Before anything else reads the root: a change after this point shows next time.
            manifest = root_manifest.digest(root, p["source_date_epoch"], excludes)
        except root_manifest.ManifestError as e:
            module.fail_json(msg=e.msg, cmd=e.cmd, rc=e.rc, stdout="", stderr=e.stderr)
        must_pack = not up_to_date(dest, record, fp, manifest)
    outdir = os.path.dirname(dest)
    sums_path = os.path.join(outdir, SUMS)
    result = dict(path=dest, sums=sums_path, packed=must_pack, duration=0.0, changed=False, signed=[])

    def cmd(argv, data=None):
        return module.run_command(argv, data=data, binary_data=True)

    key = digest_signer = None
    if p["sign_key"] and not module.check_mode:
        # Before packing: an unknown key fails at once, not after minutes of tar.
        key, digest_signer = signing_key(module, cmd, p["gnupghome"], p["sign_key"])
        result["fingerprint"] = key[0]
    signer = key[0] if key else None

    # The root as it was at the last pack, with the same inputs: its tarball is
    # what packing would make again, byte for byte (the tarball is reproducible).
    reuse = None
    if must_pack and manifest is not None:
        # Check mode does not ask gpg for the key: the recorded signer stands for it.
        want_signer = (signer or (root_record or {}).get("signer") or "?") if p["sign_key"] else None
        reuse = reusable(root_record, fp, manifest, want_signer)
        if reuse == dest:
            reuse = None

    if module.check_mode:
        if reuse:
            result.update(packed=False, reused=reuse, size=root_record["size"], sha512=root_record["sha512"])
        elif not must_pack:
            result.update(size=record["size"], sha512=record["sha512"])
        elif p["sign_key"]:
            result["signed"] = [dest]
        result["changed"] = must_pack
        module.exit_json(**result)

    if reuse:
        take_over(module, reuse, dest, bool(p["sign_key"]))
        record = dict(fingerprint=fp, manifest=manifest, sha512=root_record["sha512"], size=root_record["size"],
                      tar=tar_cmd, compressor=comp_cmd)
        write_atomic(record_path(dest), json.dumps(record, indent=1) + "\n")
        write_root_record(root, fp, manifest, dest, record, signer)
        result.update(changed=True, packed=False, reused=reuse,
                      signatures_reused=[dest] if p["sign_key"] else [])
    elif must_pack:
        listing = taken = None
        if manifest is None:
            # The listing runs beside tar; ``since`` (read before either starts)
            # makes a change meanwhile record no digest (root_manifest).
            since = root_manifest.change_clock()
            listing = root_manifest.Listing(
                root, preexec_fn=tar_stream.beside_stream(tar_stream.die_with_parent()))
            taken = {}

        def take_manifest():
            try:
                taken["manifest"] = listing.digest(p["source_date_epoch"], excludes, since)
            except root_manifest.ManifestError as e:
                taken["error"] = e

        def check_manifest():
            e = taken and taken.get("error")
            if e:
                module.fail_json(msg=e.msg, cmd=e.cmd, rc=e.rc, stdout="", stderr=e.stderr)
        try:
            result.update(pack_and_sign(module, tar_cmd, comp_cmd, dest, p["sign_key"], p["gnupghome"], key,
                                        digest_signer, take_manifest if listing else None, check_manifest))
        finally:
            if listing:
                listing.close()
        if listing:
            manifest = taken["manifest"]
        if p["sign_key"]:
            result["sign_method"] = "digest" if digest_signer else "stream"
        record = dict(fingerprint=fp, manifest=manifest, sha512=result.pop("sha512"), size=result.pop("size"),
                      tar=tar_cmd, compressor=comp_cmd)
        write_atomic(record_path(dest), json.dumps(record, indent=1) + "\n")
        write_root_record(root, fp, manifest, dest, record, signer)
    result.update(size=record["size"], sha512=record["sha512"])
    if not p["sums"]:
        module.exit_json(**result)

    try:
        with open(sums_path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    # Files SHA512SUMS already covers stay covered (re-hashed) while they exist,
    # so a later pack call without checksum_files does not drop them again.
    try:
        listed = [n for n in parse_sums(current or "") if n != os.path.basename(dest)]
    except ValueError:
        listed = []
    entries = {os.path.basename(dest): record["sha512"]}
    for name in listed + p["checksum_files"]:
        if name in listed and not os.path.isfile(os.path.join(outdir, name)):
            continue
        path = name if os.path.isabs(name) else os.path.join(outdir, name)
        if os.path.dirname(os.path.abspath(path)) != outdir or not os.path.isfile(path):
            module.fail_json(msg="checksum file %s must be a file next to %s" % (name, dest))
        entries[os.path.basename(path)] = sha512_file(path)
    text = format_sums(entries)
    if current != text:
        discard(sums_path + ".asc")  # it covers the old content
        write_atomic(sums_path, text)
        result["changed"] = True
        if key:
            try:
                pgp.sign_file(cmd, p["gnupghome"], p["sign_key"], sums_path, key[1])
            except pgp.SignError as e:
                module.fail_json(**e.fail_args())
            result["signed"].append(sums_path)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            compression=dict(type="str", choices=["zstd", "xz"], default="zstd"),
            level=dict(type="int"),
            source_date_epoch=dict(type="int"),
            excludes=dict(type="list", elements="str", default=[]),
            checksum_files=dict(type="list", elements="str", default=[]),
            sums=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            # A key name or fingerprint, not a secret.
            signing_key=dict(type="str", no_log=False, aliases=["sign_key"]),
            gnupghome=dict(type="path"),
        ),
        required_by=dict(signing_key=["gnupghome"]),
        supports_check_mode=True,
    )
    # run() reads the key under the name it had before the three signing
    # modules shared one.
    module.params["sign_key"] = module.params["signing_key"]
    run(module)


if __name__ == "__main__":
    main()
