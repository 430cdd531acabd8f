# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .install
  - .config

havip-metrics-service-running:
  service.running:
    - name: {{ havip.lookup.services.node_exporter }}
    - enable: true
    - require:
      - file: havip-metrics-textfile-dir
    - watch:
      - file: havip-metrics-defaults-file

{#- keepalived's notify script publishes the VRRP state on every transition;
    when metrics are turned on later (or the first transitions came before
    the textfile directory), or the script changed since it last published
    (what it publishes may have), it publishes the current state here. #}
havip-metrics-vrrp-published:
  cmd.run:
    - name: {{ havip.lookup.keepalived.notify_script }} METRICS
    - onlyif: test -x {{ havip.lookup.keepalived.notify_script }}
    - unless: test {{ havip.lookup.metrics.textfile_dir }}/havip.prom -nt {{ havip.lookup.keepalived.notify_script }}
    - require:
      - file: havip-metrics-textfile-dir
