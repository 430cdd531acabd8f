# -*- coding: utf-8 -*-
# vim: ft=sls
# Removes the havip stack from this minion: keepalived first (the VIPs leave
# before HAProxy stops), then HAProxy, then nginx.  Firewall and SELinux
# settings are left as they are.

include:
  - .keepalived.clean
  - .haproxy.clean
  - .nginx.clean
