# -*- coding: utf-8 -*-
# vim: ft=sls
# Stops keepalived and removes what havip installed for it.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}

havip-keepalived-service-clean:
  service.dead:
    - name: {{ havip.lookup.services.keepalived }}
    - enable: false

{#- The handover's relays, conntrack table and VIPs kept on lo, also those
    of a handover cut off halfway. #}
havip-keepalived-handover-clean:
  cmd.run:
    - name: {{ havip.lookup.keepalived.handover_script }} clean
    - onlyif: test -x {{ havip.lookup.keepalived.handover_script }}
    - require:
      - service: havip-keepalived-service-clean

{#- The link check's count of the other balancers' VRRP adverts. #}
havip-keepalived-link-table-clean:
  cmd.run:
    - name: nft delete table inet {{ havip.checks.link.table }}
    - onlyif: nft list table inet {{ havip.checks.link.table }}
    - require:
      - service: havip-keepalived-service-clean

havip-keepalived-pkg-clean:
  pkg.removed:
    - pkgs: {{ havip.lookup.pkgs.keepalived | tojson }}
    - require:
      - service: havip-keepalived-service-clean

havip-keepalived-config-clean:
  file.absent:
    - names:
      - {{ havip.lookup.keepalived.config }}
      - {{ havip.lookup.keepalived.check_script }}
      - {{ havip.lookup.keepalived.link_check_script }}
      - {{ havip.lookup.keepalived.link_fault_file }}
      - {{ havip.lookup.keepalived.link_fault_file }}.seen
      - {{ havip.lookup.keepalived.notify_script }}
      - {{ havip.lookup.keepalived.handover_script }}
      - {{ havip.lookup.keepalived.dropin }}
      - {{ havip.lookup.keepalived.events_dir }}
      - {{ havip.lookup.keepalived.standby_file }}
      - {{ havip.lookup.keepalived.state_dir }}
    - require:
      - pkg: havip-keepalived-pkg-clean
      - cmd: havip-keepalived-handover-clean
