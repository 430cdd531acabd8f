# -*- coding: utf-8 -*-
# vim: ft=sls
# Every VIP as its VRRP state wants it for the handover (havip-handover):
# the holder keeps it also on lo, the others relay.  keepalived's notify
# script does this on every transition; this catches up where none came
# (a keepalived reload, a handover cut off halfway) and changes nothing when
# all is in order.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set script = havip.lookup.keepalived.handover_script %}

include:
  - .service

havip-keepalived-handover-sync:
  cmd.run:
    - name: {{ script }} sync
    - unless: {{ script }} check
    - require:
      - service: havip-keepalived-service-running

{#- New peers or addresses: every relay again. #}
havip-keepalived-handover-apply:
  cmd.run:
    - name: {{ script }} apply
    - onchanges:
      - file: havip-keepalived-handover-script-file
    - require:
      - cmd: havip-keepalived-handover-sync
