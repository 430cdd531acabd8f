# -*- coding: utf-8 -*-
# vim: ft=sls
# SELinux stays enforcing: allow what havip's daemons need instead.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set selinux = havip.lookup.selinux %}

havip-selinux-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.selinux | tojson }}
{%- if 'balancer' in havip.roles %}
{%-   for boolean in selinux.booleans %}

havip-selinux-boolean-{{ boolean }}:
  selinux.boolean:
    - name: {{ boolean }}
    - value: true
    - persist: true
    - require:
      - pkg: havip-selinux-pkg
{%-   endfor %}
{%- endif %}
{%- if 'backend' in havip.roles and havip.backend.port not in selinux.http_ports %}

havip-selinux-port-nginx:
  selinux.port_policy_present:
    - name: tcp/{{ havip.backend.port }}
    - sel_type: http_port_t
    - require:
      - pkg: havip-selinux-pkg
{%- endif %}
