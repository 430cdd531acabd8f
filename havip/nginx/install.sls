# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- if havip.lookup.pkgs.repo %}

havip-nginx-repo-pkgs:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.repo | tojson }}
    - require_in:
      - pkg: havip-nginx-pkg
{%- endif %}

havip-nginx-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.nginx | tojson }}
