# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .install

havip-metrics-service-running:
  service.running:
    - name: {{ havip.lookup.services.node_exporter }}
    - enable: true
    - require:
      - file: havip-metrics-textfile-dir
