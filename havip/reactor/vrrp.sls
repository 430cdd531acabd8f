# -*- coding: utf-8 -*-
# vim: ft=sls
# An example reactor for the havip beacon's VRRP transitions: each one is
# appended to a log on the master (the master option havip_vrrp_log, default
# /var/log/salt/havip-vrrp.log), and a VIP taken over (MASTER) is also
# announced as the event havip/vip/<vip>/holder.  Wire it in the master's
# config (README, "Events"):
#
#   reactor:
#     - 'salt/beacon/*/havip/*':
#       - salt://havip/reactor/vrrp.sls
{%- set transition = data.get('data', data) %}
{%- set minion = data.get('id', tag.split('/')[2]) %}

havip-reactor-log-transition:
  runner.salt.cmd:
    - args:
      - fun: file.append
      - path: {{ opts.get('havip_vrrp_log', '/var/log/salt/havip-vrrp.log') }}
      - args:
        - "{{ transition.at }} {{ minion }} {{ transition.vip }} {{ transition.previous }} -> {{ transition.state }}"
{%- if transition.state == 'MASTER' %}

havip-reactor-announce-holder:
  runner.event.send:
    - args:
      - tag: havip/vip/{{ transition.vip }}/holder
      - data:
          vip: {{ transition.vip }}
          holder: {{ minion }}
          at: {{ transition.at }}
{%- endif %}
