# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

include:
  - .install

{#- HAProxy binds the VIPs on every balancer, also where it does not hold them yet. #}
{%- for family in havip.vip_families %}
{%-   set proto = 'ipv4' if family == 4 else 'ipv6' %}

havip-haproxy-sysctl-nonlocal-bind-{{ proto }}:
  sysctl.present:
    - name: net.{{ proto }}.ip_nonlocal_bind
    - value: 1
    - config: {{ havip.lookup.sysctl_file }}
    - require_in:
      - file: havip-haproxy-config-file
{%- endfor %}

havip-haproxy-config-file:
  file.managed:
    - name: {{ havip.lookup.haproxy.config }}
    - source: salt://{{ tplroot }}/files/haproxy.cfg.jinja
    - template: jinja
    - user: root
    - group: {{ havip.lookup.haproxy.group }}
    # It holds the stats password: readable by HAProxy's group only, and no
    # diff in Salt's output (the template reads the password from the pillar).
    - mode: '0640'
    - show_changes: false
    - context:
        havip: {{ havip | json }}
    - check_cmd: haproxy -c -q -f
    - require:
      - pkg: havip-haproxy-pkg
