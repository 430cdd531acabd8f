# -*- coding: utf-8 -*-
# vim: ft=sls
# Removes the havip stack from this minion: keepalived first (the VIPs leave
# before HAProxy stops), then HAProxy, then nginx.  Firewall and SELinux
# settings are left as they are.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .keepalived.clean
  - .haproxy.clean
  - .nginx.clean

havip-facts-clean:
  file.absent:
    - name: {{ havip.facts_file }}
