# -*- coding: utf-8 -*-
# vim: ft=sls
# Removes what `state.apply havip` installed for this minion's roles, in the
# reverse order: the beacon and keepalived first (the VIPs leave before
# HAProxy stops), then HAProxy and the VRRP metrics, then nginx, then the
# deployed facts.  Left as they are, because other software may use them:
# curl and nftables (lookup:pkgs:tools), prometheus-node-exporter, the EPEL
# repository, firewalld and its rules, SELinux booleans and port policies,
# the sysctl settings' live values (their file goes), and the Salt mine entry
# of a backend (`salt <id> mine.delete havip_address`).
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set includes = [] %}
{%- if 'balancer' in havip.roles %}
{%-   if opts.get('file_client') != 'local' %}{% do includes.append('.events.clean') %}{% endif %}
{%-   do includes.extend(['.keepalived.clean', '.haproxy.clean', '.metrics.clean']) %}
{%- endif %}
{%- if 'backend' in havip.roles %}{% do includes.append('.nginx.clean') %}{% endif %}
{%- if includes %}

include: {{ includes | tojson }}
{%- endif %}

havip-facts-clean:
  file.absent:
    - name: {{ havip.facts_file }}
