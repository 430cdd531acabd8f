# -*- coding: utf-8 -*-
# vim: ft=sls
# Opens what this node's roles serve in firewalld (instead of disabling it):
# backends their port, balancers the frontend (and its TLS port) to everyone;
# the stats page, the metrics (HAProxy's exporter and the node exporter) to
# firewall:admin_sources only (the stats page to the other balancers too);
# VRRP from the peers (unicast), or to its multicast group from the peers
# (IPv4) or link-local sources (IPv6).  havip.validate
# derives them (`firewalld`), and what earlier releases opened and this one
# does not (`firewalld.closed`), removed where it is.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

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
    - ports: {{ havip.firewalld.ports | tojson }}
    - rich_rules: {{ havip.firewalld.rich_rules | tojson }}
    - prune_ports: false
    - prune_services: false
    - require:
      - service: havip-firewall-service-running
{%- set zone = havip.firewall.zone %}
{%- for port in havip.firewalld.closed.ports %}

havip-firewall-closed-port-{{ port }}:
  cmd.run:
    - name: firewall-cmd --permanent --zone={{ zone }} --remove-port={{ port }} && firewall-cmd --reload
    - onlyif: firewall-cmd --permanent --zone={{ zone }} --query-port={{ port }}
    - require:
      - firewalld: havip-firewall-zone
{%- endfor %}
{%- for rule in havip.firewalld.closed.rich_rules %}

havip-firewall-closed-rule-{{ loop.index }}:
  cmd.run:
    - name: firewall-cmd --permanent --zone={{ zone }} --remove-rich-rule='{{ rule }}' && firewall-cmd --reload
    - onlyif: firewall-cmd --permanent --zone={{ zone }} --query-rich-rule='{{ rule }}'
    - require:
      - firewalld: havip-firewall-zone
{%- endfor %}
