# -*- coding: utf-8 -*-
# vim: ft=sls
# prometheus-node-exporter serves the VRRP state that keepalived's notify
# script writes into its textfile collector's directory (havip.prom).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

{#- The exporter alone: its Recommends (a set of collectors run by timers)
    are the operator's choice. #}
havip-metrics-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.node_exporter | tojson }}
    - install_recommends: false

havip-metrics-textfile-dir:
  file.directory:
    - name: {{ havip.lookup.metrics.textfile_dir }}
    - makedirs: true
    - require:
      - pkg: havip-metrics-pkg
