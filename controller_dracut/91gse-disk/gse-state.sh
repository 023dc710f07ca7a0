#!/bin/sh
# pre-mount hook 05: mount the state area when the disk already has one, so
# the network steps can compare serials with what this client accepted.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-disk-lib.sh
gse_env_load

gse_state_mount
