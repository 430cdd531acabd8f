# -*- coding: utf-8 -*-
# vim: ft=sls
# Every VRRP transition of this balancer on the Salt event bus: the havip
# beacon (_beacons/havip.py) sends what keepalived's notify script queues.
# beacon.present adds it to the running minion (and beacons.conf): no
# restart.  Needs the beacon synced: salt '*' saltutil.sync_all
# No `interval`: the minion runs its beacons once a second, and Salt counts
# a beacon's interval in loop_intervals (interval 1 with loop_interval 0.05
# would send the queue every 20 s).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-events-beacon:
  beacon.present:
    - name: havip
    - save: true
    - enable: true
    - events_dir: {{ havip.lookup.keepalived.events_dir }}
