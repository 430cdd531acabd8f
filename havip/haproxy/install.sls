# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-haproxy-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.haproxy | tojson }}
