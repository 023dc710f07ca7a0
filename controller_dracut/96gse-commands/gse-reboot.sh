#!/bin/sh
# pre-pivot hook 85: "Reboot after update" (the queued command
# reboot-after-update): when this boot installed a new system, reboot into
# it instead of handing over.  After the clean-up, before a life cycle is
# opened, so the reboot counts as no cycle at all.
. /lib/gse/gse-lib.sh
gse_env_load

if gse_yes "$GSE_REBOOT_AFTER_UPDATE" && [ "$(gse_result version)" = 0 ]; then
    gse_log "commands: new system installed, rebooting into it (reboot-after-update)"
    gse_log_save
    sync
    reboot -f
fi
