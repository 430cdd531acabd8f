# -*- coding: utf-8 -*-
# vim: ft=sls
# Every VRRP transition of this balancer on the Salt event bus: the havip
# beacon (_beacons/havip.py) sends what keepalived's notify script queues.
# beacon.present adds it to the running minion (and beacons.conf): no
# restart.  Needs the beacon synced: salt '*' saltutil.sync_all
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-events-beacon:
  beacon.present:
    - name: havip
    - save: true
    - enable: true
    - events_dir: {{ havip.lookup.keepalived.events_dir }}
    - interval: 1
