# -*- coding: utf-8 -*-
# vim: ft=sls
# An example reactor for the havip beacon's VRRP transitions: each one is
# appended to a log on the master by the runner havip.log_transition (the
# master option havip_vrrp_log, default /var/log/salt/havip-vrrp.log; it
# checks what the minion sent), and a VIP taken over (MASTER) is also
# announced as the event havip/vip/<vip>/holder.  Wire it in the master's
# config (README, "Events"):
#
#   reactor:
#     - 'salt/beacon/*/havip/*':
#       - salt://havip/reactor/vrrp.sls
{%- set transition = data.get('data', data) %}
{%- set minion = data.get('id', tag.split('/')[2]) %}

havip-reactor-log-transition:
  runner.havip.log_transition:
    - args:
      - minion: {{ minion | json }}
      - vip: {{ transition.vip | json }}
      - state: {{ transition.state | json }}
      - previous: {{ transition.previous | json }}
      - at: {{ transition.at | json }}
{%- if transition.state == 'MASTER' %}

havip-reactor-announce-holder:
  runner.event.send:
    - args:
      - tag: {{ ('havip/vip/' ~ transition.vip ~ '/holder') | json }}
      - data:
          vip: {{ transition.vip | json }}
          holder: {{ minion | json }}
          at: {{ transition.at | json }}
{%- endif %}
