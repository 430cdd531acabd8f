# -*- coding: utf-8 -*-
# vim: ft=sls
# A backend without an `address` in the pillar publishes its addresses in the
# Salt mine (havip:mine picks the network and/or interface); balancers read
# them from there on their next apply.  Sent only when the mine holds
# something else, so a second apply changes nothing.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set current = salt['network.ip_addrs'](**havip.mine_args) %}
{%- set published = salt['mine.get'](grains['id'], havip.mine_function).get(grains['id']) %}
{%- if published != current %}

havip-mine-address:
  module.run:
    - mine.send:
      - {{ havip.mine_function }}
      - mine_function: network.ip_addrs
{%-   for key, value in havip.mine_args | dictsort %}
      - {{ key }}: {{ value | json }}
{%-   endfor %}
{%- else %}

havip-mine-address:
  test.succeed_without_changes:
    - name: {{ grains['id'] }} has published {{ current | join(', ') }} as {{ havip.mine_function }}
{%- endif %}
