# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- from tplroot ~ '/macros.jinja' import service_args %}

include:
  - .config

havip-haproxy-service-running:
  service.running:
    - name: {{ havip.lookup.services.haproxy }}
    - enable: true
    - reload: true
    {{- service_args(havip.lookup, 'haproxy') }}
    - watch:
      - file: havip-haproxy-config-file
