# -*- coding: utf-8 -*-
# vim: ft=sls
# What a node publishes in the Salt mine for the others, each entry sent
# only when the mine holds something else (a second apply changes nothing):
#  - a backend without an `address` in the pillar: its addresses on
#    havip:mine's network and/or interface (havip_address); balancers take
#    its address from there;
#  - a balancer: its own addresses by interface (havip_relay_addresses,
#    havip.relay_addresses: no VIP, nothing on lo, sorted, so it stays the
#    same whichever balancer holds the VIPs); the other balancers' handover
#    relays a VIP's packets to its address on the VIP's interface.
# Listing them in the pillar's `mine_functions` (README, "Pillar") has them
# in the mine before the first apply.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set entries = [] %}
{%- if havip.node.discovered %}
{%-   do entries.append((havip.mine_function, 'network.ip_addrs', havip.mine_args,
                         salt['network.ip_addrs'](**havip.mine_args))) %}
{%- endif %}
{%- if 'balancer' in havip.roles %}
{%-   do entries.append((havip.relay_function, 'havip.relay_addresses', {},
                         salt['havip.relay_addresses']())) %}
{%- endif %}
{%- for function, mine_function, args, current in entries %}
{%-   set published = salt['mine.get'](grains['id'], function).get(grains['id']) %}
{%-   if published != current %}

havip-mine-{{ function | replace('_', '-') }}:
  module.run:
    - mine.send:
      - {{ function }}
      - mine_function: {{ mine_function }}
{%-     for key, value in args | dictsort if key != 'args' %}
      - {{ key }}: {{ value | tojson }}
{%-     endfor %}
{%-     for value in args.get('args', []) %}
      - {{ value }}
{%-     endfor %}
{%-   else %}

havip-mine-{{ function | replace('_', '-') }}:
  test.succeed_without_changes:
    - name: {{ grains['id'] }} has published its {{ function }}
{%-   endif %}
{%- endfor %}
