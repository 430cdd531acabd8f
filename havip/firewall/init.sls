# -*- coding: utf-8 -*-
# vim: ft=sls
# Opens what this node's roles serve in firewalld (instead of disabling it):
# backends their port, balancers the frontend, the stats page and VRRP.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- from tplroot ~ '/macros.jinja' import service_args %}
{%- set ports = [] %}
{%- set rich_rules = [] %}
{%- if 'backend' in havip.roles %}
{%-   do ports.append(havip.backend.port ~ '/tcp') %}
{%- endif %}
{%- if 'balancer' in havip.roles %}
{%-   do ports.extend([havip.frontend.port ~ '/tcp', havip.stats.port ~ '/tcp']) %}
{%-   for family in havip.vip_families %}
{%-     do rich_rules.append('rule family="ipv' ~ family ~ '" protocol value="vrrp" accept') %}
{%-   endfor %}
{%- endif %}

havip-firewall-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.firewall | json }}

havip-firewall-service-running:
  service.running:
    - name: {{ havip.lookup.services.firewall }}
    - enable: true
    {{- service_args(havip.lookup, 'firewall') }}
    - require:
      - pkg: havip-firewall-pkg

havip-firewall-zone:
  firewalld.present:
    - name: {{ havip.firewall.zone }}
    - ports: {{ ports | unique | list | json }}
    - rich_rules: {{ rich_rules | json }}
    - prune_ports: false
    - prune_services: false
    - require:
      - service: havip-firewall-service-running
