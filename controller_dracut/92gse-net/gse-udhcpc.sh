#!/bin/sh
# udhcpc event script: configure the leased address, route and resolver.
case "$1" in
    bound | renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for _r in $router; do
            ip route add default via "$_r" dev "$interface" && break
        done
        : > /etc/resolv.conf
        for _d in $dns; do echo "nameserver $_d" >> /etc/resolv.conf; done
        ;;
    deconfig)
        ip addr flush dev "$interface"
        ;;
esac
exit 0
