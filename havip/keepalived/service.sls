# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .config
  - {{ tplroot }}.haproxy.service

havip-keepalived-service-running:
  service.running:
    - name: {{ havip.lookup.services.keepalived }}
    - enable: true
    - reload: true
    - require:
      - service: havip-haproxy-service-running
    - watch:
      - file: havip-keepalived-config-file
      - file: havip-keepalived-check-script-file
      - file: havip-keepalived-link-check-script-file
      - file: havip-keepalived-notify-script-file
