#!/bin/sh
# cmdline hook 01: "Export config.d", the first controller script.
# Reads the controller's config.d (built into the initramfs at /config.d)
# and exports its settings for every later step.
. /lib/gse/gse-lib.sh

rm -f "$GSE_ENV"
# Built-in defaults: a config.d that leaves a setting out still works.
gse_env_set GSE_LABEL_SYSFS SYSFS
gse_env_set GSE_LABEL_BACKUPFS BACKUPFS
gse_env_set GSE_LABEL_DEPRIVED DEPRIVED
gse_env_set GSE_LABEL_STATE GSESTATE
gse_env_set GSE_KEYRING /config.d/keys/gse.gpg
gse_env_set GSE_SUBVOLUME gse-root
for _f in /config.d/*; do
    [ -f "$_f" ] && gse_conf_parse "$_f"
done
unset _f
