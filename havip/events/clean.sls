# -*- coding: utf-8 -*-
# vim: ft=sls
# Removes the havip beacon from the running minion and beacons.conf.

havip-events-beacon-clean:
  beacon.absent:
    - name: havip
    - save: true
