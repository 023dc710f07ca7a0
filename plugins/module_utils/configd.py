# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""config.d: the build configuration as the administrator sees it.

One file per category of the main menu (``<category>.yml``, a YAML mapping
of ``gse_*`` variables).  The installed defaults in /usr/lib64/gse/config.d are
made from the roles' documented defaults by ``scripts/gen-configd`` and a test
keeps them in step; /etc/gse/config.d holds the administrator's edits.  Like
hooks.py this file imports nothing from Ansible.
"""

from __future__ import annotations

# (category, menu title, variables).  Every role default but those of the run
# itself (roles/common: flags, build id, config.d directories) appears in exactly one category.
CATEGORIES = (
    ("sources", "Sources: stage3 mirror, keys, catalyst", (
        "gse_stage3_mirror", "gse_stage3_arch", "gse_stage3_variant", "gse_stage3_keyring", "gse_downloads_dir",
        "gse_catalyst_executable", "gse_catalyst_storedir", "gse_catalyst_config_dir", "gse_catalyst_repos",
        "gse_catalyst_subarch", "gse_catalyst_profile", "gse_catalyst_rel_type", "gse_catalyst_version_stamp",
        "gse_catalyst_repo_url", "gse_catalyst_snapshot_treeish", "gse_catalyst_repo_keyring",
        "gse_catalyst_repos_storedir", "gse_catalyst_pkgcache_dir", "gse_catalyst_seed",
        "gse_catalyst_portage_confdir", "gse_catalyst_compression", "gse_catalyst_options")),
    ("system", "System: directories, signing, publication", (
        "gse_cdistdir", "gse_log_root", "gse_clocallg", "gse_workdir", "gse_gnupghome", "gse_signing_key",
        "gse_publish_dir", "gse_repos_dir", "gse_distfiles_dir", "gse_binpkg_dir", "gse_extra_mounts",
        "gse_images_dir", "gse_image_dir", "gse_chunk_store", "gse_min_free_mb", "gse_nice", "gse_ionice_class",
        "gse_ionice_level", "gse_state_dir")),
    ("portage", "Portage: sync, make.conf, GSE profile, USE flags", (
        "gse_sync_method", "gse_sync_min_age_hours", "gse_make_conf", "gse_makeopts_jobs", "gse_eix_package",
        "gse_profile_enable", "gse_profile_repo_dir", "gse_profile_name", "gse_profile_parent",
        "gse_profile_use", "gse_profile_packages", "gse_package_use", "gse_package_accept_keywords",
        "gse_rebuild_world")),
    ("inject-custom", "Files injected into the chroot", ("gse_inject_custom", "gse_inject_resolv_conf")),
    ("distcc", "distcc", ("gse_distcc_hosts",)),
    ("ccache", "ccache", ("gse_ccache_dir", "gse_ccache_size", "gse_ccache_host_dir")),
    ("locale", "Locales", ("gse_locales", "gse_lang")),
    ("time", "Timezone", ("gse_timezone",)),
    ("console", "Console font and keymap", ("gse_consolefont", "gse_keymap")),
    ("fstab", "fstab entries", ("gse_fstab",)),
    ("ssh", "SSH public keys", ("gse_ssh_keys",)),
    ("users", "Users", ("gse_users",)),
    ("etc", "Other files under /etc", ("gse_etc_files", "gse_hostname")),
    ("packages", "Packages", ("gse_essential_packages", "gse_packages", "gse_build_only_packages", "gse_depclean")),
    ("runlevels", "Runlevels", ("gse_runlevels", "gse_client_health")),
    ("kernel", "Kernel, initramfs and boot loader", (
        "gse_kernel_build", "gse_kernel_packages", "gse_kernel_config", "gse_kernel_genkernel_args",
        "gse_initramfs_build", "gse_initramfs_packages", "gse_initramfs_tool", "gse_initramfs_dracut_args",
        "gse_bootloader", "gse_bootloader_packages")),
    ("minimal", "Cleanup and --build-minimal", (
        "gse_clean_entries", "gse_clean_usr_share", "gse_minimal_entries", "gse_minimal_keep_locales",
        "gse_compression", "gse_compression_level", "gse_source_date_epoch", "gse_image_excludes")),
    ("publish", "Publication", ("gse_mark_default", "gse_publish_keyring", "gse_client_configd", "gse_publish_keep",
                                "gse_verify_entries")),
)

# What config.d may hold.  The other settings of the roles' argument specs are
# set by the gse command (its option table gives each flag's variable) or with -e.
CATEGORY_OF = {var: cat for cat, _title, names in CATEGORIES for var in names}
