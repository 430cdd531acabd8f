# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- from tplroot ~ '/macros.jinja' import service_args %}

include:
  - .config

havip-nginx-service-running:
  service.running:
    - name: {{ havip.lookup.services.nginx }}
    - enable: true
    - reload: true
    {{- service_args(havip.lookup, 'nginx') }}
    - watch:
      - file: havip-nginx-config-file
{%- for path in havip.lookup.nginx.remove %}
      - file: havip-nginx-config-remove-{{ path }}
{%- endfor %}
