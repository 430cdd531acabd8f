# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-keepalived-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.keepalived | tojson }}

{#- Left in place by havip.clean: other software uses them too. #}
havip-keepalived-tools-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.tools | tojson }}
