# -*- coding: utf-8 -*-
# vim: ft=sls
# prometheus-node-exporter listens on metrics:bind (default: this balancer's
# own address) only, and reads the VRRP state from havip's textfile
# directory: its unit reads ARGS from this file.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set metrics = havip.lookup.metrics %}
{%- set args = ['--collector.textfile.directory=' ~ metrics.textfile_dir] %}
{%- for ip in havip.listen.metrics %}
{%-   do args.append('--web.listen-address=' ~ (ip | ipwrap) ~ ':' ~ metrics.node_exporter_port) %}
{%- endfor %}

include:
  - .install

havip-metrics-defaults-file:
  file.managed:
    - name: {{ metrics.node_exporter_defaults }}
    - user: root
    - group: root
    - mode: '0644'
    - contents: |
        # Managed by Salt (havip formula): local changes are overwritten.
        ARGS="{{ args | join(' ') }}"
    - require:
      - pkg: havip-metrics-pkg
