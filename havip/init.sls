# -*- coding: utf-8 -*-
# vim: ft=sls
# Every minion gets exactly the roles the pillar `havip:nodes` gives it.
{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import havip with context %}
{%- set includes = [] %}
{%- if havip.roles %}
{%-   do includes.append('.facts') %}
{%-   if havip.selinux.manage %}{% do includes.append('.selinux') %}{% endif %}
{%-   if havip.firewall.manage %}{% do includes.append('.firewall') %}{% endif %}
{%-   if 'backend' in havip.roles %}{% do includes.append('.nginx') %}{% endif %}
{%-   if havip.node.discovered %}{% do includes.append('.mine') %}{% endif %}
{%-   if 'balancer' in havip.roles %}{% do includes.extend(['.haproxy', '.keepalived']) %}{% endif %}

include: {{ includes | json }}
{%- else %}

havip-not-a-node:
  test.nop:
    - name: {{ grains['id'] }} is not listed in havip:nodes, nothing to do
{%- endif %}
