# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .config

{#- A new config: the servers out of rotation saved before the reload, those
    it no longer has at the same address and port left out (HAProxy would
    take the file's port over the config's). #}
havip-haproxy-server-state-saved:
  module.run:
    - havip.save_server_state: []
    - onchanges:
      - file: havip-haproxy-config-file

havip-haproxy-service-running:
  service.running:
    - name: {{ havip.lookup.services.haproxy }}
    - enable: true
    - reload: true
    - require:
      - module: havip-haproxy-server-state-saved
    - watch:
      - file: havip-haproxy-config-file
