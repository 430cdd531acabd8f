# -*- coding: utf-8 -*-
# vim: ft=sls
# An example reactor for the havip beacon's VRRP transitions: each one goes
# to the runner havip.log_transition, which believes it only once the
# minion it names confirms it (an event's tag and data are both written by
# whichever minion sent it), then appends it to a log on the master (the
# master option havip_vrrp_log, default /var/log/salt/havip-vrrp.log) and
# announces a VIP taken over (MASTER) as the event havip/vip/<vip>/holder.
# Nothing is fired here: what the runner refused is never announced.
# Wire it in the master's config (README, "Events"):
#
#   reactor:
#     - 'salt/beacon/*/havip/*':
#       - salt://havip/reactor/vrrp.sls
{%- set transition = data.get('data', data) %}

havip-reactor-log-transition:
  runner.havip.log_transition:
    - args:
      - minion: {{ tag.split('/')[2] | tojson }}
      - vip: {{ transition.vip | tojson }}
      - state: {{ transition.state | tojson }}
      - previous: {{ transition.previous | tojson }}
      - at: {{ transition.at | tojson }}
