# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-keepalived-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.keepalived | json }}
