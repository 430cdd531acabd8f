# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .config

havip-nginx-service-running:
  service.running:
    - name: {{ havip.lookup.services.nginx }}
    - enable: true
    - reload: true
    - watch:
      - file: havip-nginx-config-file
{%- for path in havip.lookup.nginx.remove %}
      - file: havip-nginx-config-remove-{{ path }}
{%- endfor %}
