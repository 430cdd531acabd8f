# -*- coding: utf-8 -*-
# vim: ft=sls
# Opens what this node's roles serve in firewalld (instead of disabling it):
# backends their port; balancers the frontend (and its TLS port), the stats
# page, the metrics (HAProxy's exporter and the node exporter) and VRRP.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set ports = [] %}
{%- set rich_rules = [] %}
{%- if 'backend' in havip.roles %}
{%-   do ports.append(havip.backend.port ~ '/tcp') %}
{%- endif %}
{%- if 'balancer' in havip.roles %}
{%-   do ports.extend([havip.frontend.port ~ '/tcp', havip.stats.port ~ '/tcp']) %}
{%-   if havip.frontend.tls.enabled %}{% do ports.append(havip.frontend.tls.port ~ '/tcp') %}{% endif %}
{%-   if havip.metrics.port %}
{%-     do ports.extend([havip.metrics.port ~ '/tcp', havip.lookup.metrics.node_exporter_port ~ '/tcp']) %}
{%-   endif %}
{#-   VRRP from the other balancers only: their addresses, and for IPv6
      the link-local sources of multicast adverts. #}
{%-   set peers = havip.balancers | rejectattr('name', 'equalto', havip.node.name)
                  | map(attribute='address') | list %}
{%-   for family in havip.vip_families %}
{%-     set sources = peers | select('match', '.*:' if family == 6 else '^[0-9.]+$') | list %}
{%-     for source in sources + (['fe80::/10'] if family == 6 else []) %}
{%-       do rich_rules.append('rule family="ipv' ~ family ~ '" source address="' ~ source
                               ~ '" protocol value="vrrp" accept') %}
{%-     endfor %}
{%-   endfor %}
{%- endif %}

havip-firewall-pkg:
  pkg.installed:
    - pkgs: {{ havip.lookup.pkgs.firewall | tojson }}

havip-firewall-service-running:
  service.running:
    - name: {{ havip.lookup.services.firewall }}
    - enable: true
    - require:
      - pkg: havip-firewall-pkg

havip-firewall-zone:
  firewalld.present:
    - name: {{ havip.firewall.zone }}
    - ports: {{ ports | unique | list | tojson }}
    - rich_rules: {{ rich_rules | tojson }}
    - prune_ports: false
    - prune_services: false
    - require:
      - service: havip-firewall-service-running
