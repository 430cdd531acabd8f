# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set lookup = havip.lookup %}

include:
  - .install

{#- keepalived runs these as root (enable_script_security): root-owned, not
    writable by anyone else (their directory made so where it is missing: the
    RedHat family's). They only report; they never stop keepalived. #}
havip-keepalived-check-script-file:
  file.managed:
    - name: {{ lookup.keepalived.check_script }}
    - makedirs: true
    - source: {{ havip.tofs.sources['havip-keepalived-check-script-file'] | tojson }}
    - template: jinja
    - user: root
    - group: root
    - mode: '0755'
    - context:
        havip: {{ havip | tojson }}
    - require:
      - pkg: havip-keepalived-pkg

havip-keepalived-link-check-script-file:
  file.managed:
    - name: {{ lookup.keepalived.link_check_script }}
    - makedirs: true
    - source: {{ havip.tofs.sources['havip-keepalived-link-check-script-file'] | tojson }}
    - template: jinja
    - user: root
    - group: root
    - mode: '0755'
    - context:
        havip: {{ havip | tojson }}
    - require:
      - pkg: havip-keepalived-pkg
      - pkg: havip-keepalived-tools-pkg

{#- A new script (new VIPs or virtual_router_ids): its advert counter goes,
    and its next run loads one counting the VRIDs it names now. #}
havip-keepalived-link-table-reload:
  cmd.run:
    - name: nft delete table inet {{ havip.checks.link.table }}
    - onlyif: nft list table inet {{ havip.checks.link.table }}
    - onchanges:
      - file: havip-keepalived-link-check-script-file

havip-keepalived-handover-script-file:
  file.managed:
    - name: {{ lookup.keepalived.handover_script }}
    - makedirs: true
    - source: {{ havip.tofs.sources['havip-keepalived-handover-script-file'] | tojson }}
    - template: jinja
    - user: root
    - group: root
    - mode: '0755'
    - context:
        havip: {{ havip | tojson }}
    - require:
      - pkg: havip-keepalived-pkg
      - pkg: havip-keepalived-tools-pkg

havip-keepalived-notify-script-file:
  file.managed:
    - name: {{ lookup.keepalived.notify_script }}
    - makedirs: true
    - source: {{ havip.tofs.sources['havip-keepalived-notify-script-file'] | tojson }}
    - template: jinja
    - user: root
    - group: root
    - mode: '0755'
    - context:
        havip: {{ havip | tojson }}
    - require:
      - pkg: havip-keepalived-pkg
      - file: havip-keepalived-handover-script-file

{#- keepalived starts after HAProxy and stops before it: at shutdown the VIPs
    leave (priority 0, the peers take over at once) while HAProxy still
    serves the connections in flight; at boot they come back once HAProxy
    runs.  A keepalived that dies (a crash, kill -9; not a stop) is started
    again by systemd, as Debian's unit does for HAProxy: it leaves its VIPs
    on the interfaces (a second holder, once a peer took them over) and
    removes them as it starts; the delay (a peer's master-down interval and
    1 s) lets the peer take them first.  systemd is reloaded when the
    drop-in changed: Salt's systemd module does so only when `systemctl
    status` says so, and systemd does not say so for a new drop-in (the
    lab's keepalived ran without it). #}
havip-keepalived-dropin-file:
  file.managed:
    - name: {{ lookup.keepalived.dropin }}
    - makedirs: true
    - mode: '0644'
    - contents: |
        # Managed by Salt (havip formula): local changes are overwritten.
        [Unit]
        After={{ lookup.services.haproxy }}.service

        [Service]
        Restart=on-failure
        RestartSec={{ havip.keepalived_restart_sec }}
    - require_in:
      - service: havip-keepalived-service-running

havip-keepalived-dropin-loaded:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: havip-keepalived-dropin-file
    - require_in:
      - service: havip-keepalived-service-running

{#- A balancer keeps the VIPs it hands over on lo for a moment (handover):
    it must neither answer ARP for them there nor use them as the source of
    its own ARP requests. #}
{%- if 4 in havip.vip_families %}
{%-   for name, value in havip.arp_sysctls | dictsort %}

havip-keepalived-sysctl-{{ name.split('.')[-1] | replace('_', '-') }}:
  sysctl.present:
    - name: {{ name }}
    - value: {{ value }}
    - config: {{ lookup.sysctl_file }}
{%-   endfor %}
{%- endif %}

{#- Created "in service" once; afterwards only havip.standby/resume write it,
    so a planned standby survives re-applies and restarts. #}
havip-keepalived-standby-file:
  file.managed:
    - name: {{ lookup.keepalived.standby_file }}
    - contents: '{{ havip.standby.in_service }}'
    - replace: false
    - makedirs: true
    - user: root
    - group: root
    - mode: '0644'

{#- Created out of FAULT once; afterwards only the link check writes it
    (keepalived:track_link), and keepalived needs it to start. #}
havip-keepalived-link-fault-file:
  file.managed:
    - name: {{ lookup.keepalived.link_fault_file }}
    - contents: '0'
    - replace: false
    - makedirs: true
    - user: root
    - group: root
    - mode: '0644'

havip-keepalived-config-file:
  file.managed:
    - name: {{ lookup.keepalived.config }}
    - source: {{ havip.tofs.sources['havip-keepalived-config-file'] | tojson }}
    - template: jinja
    - user: root
    - group: root
    # With VRRPv2 authentication it holds auth_pass: root only, and never a
    # diff in Salt's output (the template reads it from the pillar), not
    # even once auth_pass is gone: the diff would show the old one.
    - mode: '0600'
    - show_changes: false
    - context:
        havip: {{ havip | tojson }}
    - check_cmd: keepalived -t -f
    - require:
      - pkg: havip-keepalived-pkg
      - file: havip-keepalived-check-script-file
      - file: havip-keepalived-link-check-script-file
      - file: havip-keepalived-notify-script-file
      - file: havip-keepalived-standby-file
      - file: havip-keepalived-link-fault-file
