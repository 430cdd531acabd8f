# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .config

havip-haproxy-service-running:
  service.running:
    - name: {{ havip.lookup.services.haproxy }}
    - enable: true
    - reload: true
    - watch:
      - file: havip-haproxy-config-file
