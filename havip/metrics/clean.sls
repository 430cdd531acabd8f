# -*- coding: utf-8 -*-
# vim: ft=sls
# Removes the VRRP metrics; prometheus-node-exporter stays (it serves the
# host's own metrics too).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-metrics-clean:
  file.absent:
    - name: {{ havip.lookup.metrics.textfile_dir }}/havip.prom
